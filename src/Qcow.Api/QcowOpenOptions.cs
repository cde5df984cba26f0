// Options for opening an image.
using Microsoft.Extensions.Logging;

namespace Qcow;

/// <summary>How <see cref="QcowImage.Open(string, QcowOpenOptions?)"/> opens an image.</summary>
public sealed class QcowOpenOptions
{
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

    /// <summary>Where the library logs; null logs nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Which backing files the image may make Qcow open. Default: <see cref="ReferencedFilePolicy.Default"/>.</summary>
    public ReferencedFilePolicy ReferencedFiles { get; init; } = ReferencedFilePolicy.Default;
}
