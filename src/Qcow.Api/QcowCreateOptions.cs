// Options for creating an image, with qemu-img's defaults.
namespace Qcow;

/// <summary>An image format Qcow reads and writes, as qemu-img names them.</summary>
public enum QcowImageFormat
{
    /// <summary>qcow2 (version 2 or 3, see <see cref="QcowCreateOptions.Compat"/>).</summary>
    Qcow2,
    /// <summary>The original qcow, version 1.</summary>
    Qcow,
    /// <summary>Raw bytes: the guest disk as it is (what <see cref="QcowImage.Probe"/> names a file without a known magic).</summary>
    Raw,
}

/// <summary>A qcow2 image's compatibility level, qemu-img's compat option.</summary>
public enum QcowCompat
{
    /// <summary>"0.10": qcow2 version 2, which QEMU 0.10 and later read.</summary>
    V0_10,
    /// <summary>"1.1": qcow2 version 3 (zero clusters, feature bits, lazy refcounts, refcount widths), the default.</summary>
    V1_1,
}

/// <summary>What a new image (or a grown one) allocates up front, qemu-img's preallocation option.</summary>
public enum QcowPreallocation
{
    /// <summary>Nothing: clusters are allocated when first written.</summary>
    Off,
    /// <summary>The tables (L2 and refcounts) for the whole disk, no data.</summary>
    Metadata,
    /// <summary>Tables and data clusters, reserved in the file without writing them.</summary>
    Falloc,
    /// <summary>Tables and data clusters, written with zeros.</summary>
    Full,
}

/// <summary>How compressed clusters are compressed.</summary>
public enum QcowCompressionType
{
    /// <summary>Raw deflate ("zlib" in QEMU's words).</summary>
    Zlib,
    /// <summary>Zstandard (qcow2 version 3 only).</summary>
    Zstd,
}

/// <summary>What <see cref="QcowImage.Create(string, QcowCreateOptions, QcowOpenOptions?)"/> makes; the defaults are qemu-img's.</summary>
public sealed record QcowCreateOptions
{
    /// <summary>
    /// Virtual size in bytes; rounded up to a multiple of 512, as qemu-img does. Null takes the
    /// backing file's size (an image without one needs a size).
    /// </summary>
    public long? Size { get; init; }

    /// <summary>qcow2, qcow v1 or raw. Default: qcow2.</summary>
    public QcowImageFormat Format { get; init; } = QcowImageFormat.Qcow2;

    /// <summary>qcow2's compatibility level. Default: 1.1 (version 3).</summary>
    public QcowCompat Compat { get; init; } = QcowCompat.V1_1;

    /// <summary>What qcow2 allocates up front (raw and qcow take only <see cref="QcowPreallocation.Off"/>). Default: off.</summary>
    public QcowPreallocation Preallocation { get; init; }

    /// <summary>Cluster size in bytes, a power of two from 512 to 2 MiB. Default: 65536.</summary>
    public int ClusterSize { get; init; } = 65536;

    /// <summary>Refcount width in bits, a power of two from 1 to 64. Default: 16.</summary>
    public int RefcountBits { get; init; } = 16;

    /// <summary>Set the lazy refcounts feature (version 3). Default: false.</summary>
    public bool LazyRefcounts { get; init; }

    /// <summary>Compression of compressed clusters. Default: zlib.</summary>
    public QcowCompressionType CompressionType { get; init; } = QcowCompressionType.Zlib;

    /// <summary>The backing file's name as stored in the image; null for none.</summary>
    public string? BackingFile { get; init; }

    /// <summary>The backing file's format (qcow2 only); null to let readers probe.</summary>
    public QcowImageFormat? BackingFormat { get; init; }

    /// <summary>
    /// Open the backing file first, to refuse one that cannot be opened and, with no
    /// <see cref="Size"/>, to take its size (the default). False is qemu-img create's -u: the name
    /// is stored unchecked, and the new image is opened without its backing file.
    /// </summary>
    public bool OpenBackingFile { get; init; } = true;

    /// <summary>
    /// 16-byte L2 entries with 32 subclusters each (qemu-img's extended_l2; compat 1.1, clusters
    /// of 16 KiB or more). Qcow reads such images but does not write them yet: Create opens the
    /// new image read-only. Default: false.
    /// </summary>
    public bool ExtendedL2 { get; init; }

    /// <summary>
    /// An external data file for the guest data, created raw beside the image (qemu-img's
    /// data_file; a relative name is relative to the image). Qcow reads such images but does not
    /// write them yet: Create opens the new image read-only. Default: none.
    /// </summary>
    public string? DataFile { get; init; }

    /// <summary>The data file is a raw image of the guest, every cluster mapped to its own offset (data_file_raw). Default: false.</summary>
    public bool DataFileRaw { get; init; }
}
