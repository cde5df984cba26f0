// What QcowImage.Check found and fixed, in qemu-img check's terms.
using System.Collections.Generic;

namespace Qcow;

/// <summary>What <see cref="QcowImage.Check(QcowCheckMode)"/> does besides checking.</summary>
public enum QcowCheckMode
{
    /// <summary>Only report (qemu-img check).</summary>
    ReportOnly,
    /// <summary>Free leaked clusters by lowering their refcounts; corruptions stay (qemu-img check -r leaks).</summary>
    RepairLeaks,
    /// <summary>
    /// Fix everything (qemu-img check -r all): entries with reserved bits, misaligned or past the
    /// end of the file (those whose data is lost then read as zeros), refcounts (rebuilt), COPIED flags.
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

    /// <summary>One line per problem found, worded as qemu-img's.</summary>
    public IReadOnlyList<string> Messages { get; internal init; } = [];

    /// <summary>True when nothing is corrupt or leaked.</summary>
    public bool IsClean => Corruptions == 0 && Leaks == 0 && CheckErrors == 0;
}
