// Options for opening an image.
using Microsoft.Extensions.Logging;

namespace Qcow;

/// <summary>How <see cref="QcowImage.Open(string, QcowOpenOptions?)"/> opens an image.</summary>
public sealed record QcowOpenOptions
{
    /// <summary>
    /// The image's format. Null (the default) opens a qcow or qcow2 image, whichever its header
    /// says, and refuses anything else; to open a file as qemu-img does without -f, pass the format
    /// <see cref="QcowImage.Probe"/> names.
    /// </summary>
    public QcowImageFormat? Format { get; init; }

    /// <summary>Open without write access. Default: false.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// Read-only opens only: read the image even while another process writes it (qemu-img's -U).
    /// Without it, an image another process (QEMU or Qcow) writes cannot be opened, and a writer
    /// cannot open an image others read. What is read meanwhile may be inconsistent. Default: false.
    /// </summary>
    public bool ForceShare { get; init; }

    /// <summary>Open read-write even when the image is marked corrupt, for repair. Default: false.</summary>
    public bool ForceCorrupt { get; init; }

    /// <summary>
    /// Memory for cached L2 tables, in bytes (refcount blocks get a quarter of it). The default
    /// follows QEMU: enough to map the whole image, at most 32 MiB.
    /// </summary>
    public long CacheSize { get; init; } = 32L << 20;

    /// <summary>
    /// Open the backing chain (the default). Without it, ranges the image does not allocate read
    /// as zeros, as for qemu-img info, which opens backing files only to describe them.
    /// </summary>
    public bool OpenBackingFiles { get; init; } = true;

    /// <summary>
    /// Flushes do not reach the disk (QEMU's cache=unsafe, qemu-img convert's default for its
    /// target): faster, and a crash may lose or tear what was written. Default: false.
    /// </summary>
    public bool IgnoreFlushes { get; init; }

    /// <summary>
    /// Every write, zero write and discard is durable when it returns (QEMU's cache=writethrough):
    /// each is followed by a flush, as QEMU's block layer follows it. Default: false (writeback:
    /// durable at <see cref="QcowImage.Flush"/> or close).
    /// </summary>
    public bool WriteThrough { get; init; }

    /// <summary>
    /// The clusters a discard (or a zero write that may unmap) frees give their space back to the
    /// file system: holes are punched in the file, as QEMU does with discard=unmap (qemu-io's
    /// default). Default: false, the file keeps its blocks for reuse.
    /// </summary>
    public bool PassDiscards { get; init; }

    /// <summary>
    /// Faults to inject into the image's file as the driver reaches events (QEMU's blkdebug), to
    /// see what a failing disk does to the image; null (the default) for none.
    /// </summary>
    public QcowFaultInjection? FaultInjection { get; init; }

    /// <summary>
    /// The backing file's format, instead of the one the image records (QEMU's backing.driver
    /// option: for an image that records a wrong or unknown one); null (the default) for the recorded one.
    /// </summary>
    public QcowImageFormat? BackingFormat { get; init; }

    /// <summary>
    /// An internal snapshot to read instead of the current state, by ID or, when no ID matches,
    /// by name (qemu-img convert -l NAME); read-only opens only. Null (the default): the current state.
    /// </summary>
    public string? Snapshot { get; init; }

    /// <summary>The internal snapshot to read by its exact ID (snapshot.id=), with <see cref="SnapshotName"/> if both must match; read-only opens only.</summary>
    public string? SnapshotId { get; init; }

    /// <summary>The internal snapshot to read by its exact name (snapshot.name=), with <see cref="SnapshotId"/> if both must match; read-only opens only.</summary>
    public string? SnapshotName { get; init; }

    /// <summary>Where the library logs; null logs nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Which backing files the image may make Qcow open. Default: <see cref="ReferencedFilePolicy.Default"/>.</summary>
    public ReferencedFilePolicy ReferencedFiles { get; init; } = ReferencedFilePolicy.Default;
}
