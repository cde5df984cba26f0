// Fault injection, as QEMU's blkdebug driver does it, so that what a failing disk does to an
// image can be scripted: the qcow2 driver announces events as it works (an L2 table loaded or
// written back, guest data read or written, a flush); a fault rule armed by its event makes the
// image file's next requests fail with its errno, once or until the image closes.
using System.Collections.Generic;

namespace Qcow;

/// <summary>Points in the qcow2 driver's work where a fault can be armed, named as QEMU's blkdebug events are.</summary>
public enum QcowDriverEvent
{
    /// <summary>l1_update: an L1 entry is written.</summary>
    L1Update,

    /// <summary>l2_load: an L2 table is read from the file.</summary>
    L2Load,

    /// <summary>l2_update: a changed L2 table is written back.</summary>
    L2Update,

    /// <summary>l2_alloc_write: a new L2 table is written.</summary>
    L2AllocWrite,

    /// <summary>read_aio: guest data is read from the file.</summary>
    ReadAio,

    /// <summary>write_aio: guest data is written to the file.</summary>
    WriteAio,

    /// <summary>refblock_load: a refcount block is read from the file.</summary>
    RefblockLoad,

    /// <summary>refblock_update: a changed refcount block is written back.</summary>
    RefblockUpdate,

    /// <summary>flush_to_disk: the file is flushed to the disk.</summary>
    FlushToDisk,
}

/// <summary>
/// A fault: once the driver reaches <paramref name="Event"/> (while the injector is in
/// <paramref name="State"/>, or in any state for 0), the image file's reads and writes fail with
/// <paramref name="Errno"/>: the first one only with <paramref name="Once"/>, else every one
/// after; with <paramref name="Offset"/>, only requests that cover that byte of the file.
/// </summary>
public sealed record QcowFault(QcowDriverEvent Event, int Errno = 5, bool Once = false, long? Offset = null, int State = 0);

/// <summary>A change of the injector's state (it starts in 1) when the driver reaches <paramref name="Event"/> in <paramref name="State"/> (0: any).</summary>
public sealed record QcowFaultStateChange(QcowDriverEvent Event, int NewState, int State = 0);

/// <summary>The faults to inject into an image's file (QcowOpenOptions.FaultInjection).</summary>
public sealed record QcowFaultInjection
{
    /// <summary>The faults, in the order they are tried (as blkdebug tries its rules).</summary>
    public IReadOnlyList<QcowFault> Faults { get; init; } = [];

    /// <summary>The state changes.</summary>
    public IReadOnlyList<QcowFaultStateChange> StateChanges { get; init; } = [];
}
