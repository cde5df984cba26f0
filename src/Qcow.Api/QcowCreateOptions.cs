// Options for creating an image, with qemu-img's defaults.
namespace Qcow;

/// <summary>An image format Qcow reads, as qemu-img names them; <see cref="QcowImage.Create"/> makes the first two.</summary>
public enum QcowImageFormat
{
    /// <summary>qcow2 (version 2 or 3, see <see cref="QcowCreateOptions.Compat"/>).</summary>
    Qcow2,
    /// <summary>The original qcow, version 1.</summary>
    Qcow,
    /// <summary>Raw bytes: the guest disk as it is (what <see cref="QcowImage.Probe"/> names a file without a known magic).</summary>
    Raw,
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
public sealed class QcowCreateOptions
{
    /// <summary>
    /// Virtual size in bytes; rounded up to a multiple of 512, as qemu-img does. Null takes the
    /// backing file's size (an image without one needs a size).
    /// </summary>
    public long? Size { get; init; }

    /// <summary>qcow2 or qcow v1. Default: qcow2.</summary>
    public QcowImageFormat Format { get; init; } = QcowImageFormat.Qcow2;

    /// <summary>"1.1" (qcow2 version 3, the default) or "0.10" (version 2).</summary>
    public string Compat { get; init; } = "1.1";

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
    public string? BackingFormat { get; init; }

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
