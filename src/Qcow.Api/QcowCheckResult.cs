// What QcowImage.Check found and fixed, in qemu-img check's terms.
using System.Collections.Generic;

namespace Qcow;

/// <summary>What <see cref="QcowImage.Check(QcowCheckMode)"/> does besides checking.</summary>
public enum QcowCheckMode
{
    /// <summary>Only report (qemu-img check).</summary>
    ReportOnly,
    /// <summary>
    /// Free leaked clusters by lowering their refcounts, and fix COPIED flags if nothing else is
    /// wrong; corruptions stay (qemu-img check -r leaks).
    /// </summary>
    RepairLeaks,
    /// <summary>
    /// Fix what QEMU fixes (qemu-img check -r all): refcounts too high or too low, in place, or
    /// by new refcount structures when the old ones are broken; then COPIED flags. Table entries
    /// with reserved bits, misaligned or past the end of the file stay, reported, as in QEMU.
    /// </summary>
    RepairAll,
}

/// <summary>The result of a check; counts mean what qemu-img check's counts mean.</summary>
public sealed class QcowCheckResult
{
    internal QcowCheckResult()
    {
    }

    /// <summary>Clusters whose refcount is lower than their references, or whose COPIED flag is wrong, after any repair.</summary>
    public long Corruptions { get; internal init; }

    /// <summary>Clusters whose refcount is higher than their references, after any repair.</summary>
    public long Leaks { get; internal init; }

    /// <summary>Errors that kept the check from completing.</summary>
    public long CheckErrors { get; internal init; }

    /// <summary>
    /// False when the check stopped before its report: -r leaks found refcount structures only
    /// new ones can repair (qemu-img's "Check failed: Input/output error"). The counts are then
    /// what was found before it stopped.
    /// </summary>
    public bool Completed { get; internal init; } = true;

    /// <summary>Corruptions the repair fixed.</summary>
    public long CorruptionsFixed { get; internal init; }

    /// <summary>Leaks the repair fixed.</summary>
    public long LeaksFixed { get; internal init; }

    /// <summary>(Highest cluster in use + 1) × cluster size.</summary>
    public long ImageEndOffset { get; internal init; }

    /// <summary>Guest clusters: virtual size / cluster size, rounded up.</summary>
    public long TotalClusters { get; internal init; }

    /// <summary>Allocated entries in the active L2 tables.</summary>
    public long AllocatedClusters { get; internal init; }

    /// <summary>Allocated clusters not host-contiguous with their predecessor (every compressed one counts).</summary>
    public long FragmentedClusters { get; internal init; }

    /// <summary>Compressed clusters.</summary>
    public long CompressedClusters { get; internal init; }

    /// <summary>One line per problem found and repair made, worded and ordered as qemu-img's (a repair's lines, then those of the check after it).</summary>
    public IReadOnlyList<string> Messages { get; internal init; } = [];

    /// <summary>True when nothing is corrupt or leaked.</summary>
    public bool IsClean => Completed && Corruptions == 0 && Leaks == 0 && CheckErrors == 0;
}
