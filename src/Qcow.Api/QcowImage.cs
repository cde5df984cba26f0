// The public entry point: a qcow or qcow2 image, opened or created, read and written by guest offset.
using System;
using System.IO;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Format;
using Qcow.IO;

namespace Qcow;

/// <summary>
/// A qcow (version 1) or qcow2 (versions 2 and 3) disk image. Reads and writes address the
/// virtual disk the guest sees. One instance may be used from several threads at once.
/// </summary>
public sealed partial class QcowImage : IDisposable, IAsyncDisposable
{
    private readonly OpenSettings _settings;
    private QcowDevice _device;

    private QcowImage(QcowDevice device, OpenSettings settings)
    {
        _device = device;
        _settings = settings;
    }

    /// <summary>The image file's path.</summary>
    public string Path => _device.Path;

    /// <summary>The virtual disk's size in bytes.</summary>
    public long Length => _device.Length;

    /// <summary>False when the image was opened read-only.</summary>
    public bool CanWrite => _device.CanWrite;

    /// <summary>The format facts of the image.</summary>
    public QcowInfo Info => InfoOf(_device);

    /// <summary>Opens an existing image.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="options">How to open it; null for the defaults (read-write).</param>
    /// <exception cref="QcowFormatException">The file is not a valid qcow or qcow2 image, or uses an unsupported feature.</exception>
    /// <exception cref="UnauthorizedAccessException">The referenced-file policy refused the backing file.</exception>
    /// <exception cref="QcowLockedException">Another process (QEMU or Qcow) holds the image in a conflicting way.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="ArgumentException">Sharing was forced on a read-write open.</exception>
    public static QcowImage Open(string path, QcowOpenOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new QcowOpenOptions();
        if (options.ForceShare && !options.ReadOnly)
        {
            throw new ArgumentException("ForceShare can only be used with read-only opens, as qemu-img's -U", nameof(options));
        }

        var settings = new OpenSettings(
            !options.ReadOnly,
            options.ForceCorrupt,
            options.CacheSize,
            options.LoggerFactory ?? NullLoggerFactory.Instance,
            options.ReferencedFiles,
            ForceShare: options.ForceShare);
        return new QcowImage(ImageOpener.OpenQcow(path, settings), settings);
    }

    /// <summary>
    /// Creates a new image (replacing any file at <paramref name="path"/>) and opens it
    /// read-write. A backing file is opened first, as qemu-img create opens it: for its size when
    /// <see cref="QcowCreateOptions.Size"/> is null, and to refuse one that cannot be opened. A
    /// create that fails leaves no new file behind.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range or the combination is not allowed.</exception>
    /// <exception cref="IOException">The file cannot be written, or the backing file cannot be opened.</exception>
    public static QcowImage Create(string path, QcowCreateOptions options, QcowOpenOptions? openOptions = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Format is not (QcowImageFormat.Qcow2 or QcowImageFormat.Qcow))
        {
            throw new ArgumentException($"QcowImage.Create makes qcow and qcow2 images, not {options.Format}", nameof(options));
        }

        long? backingLength = options.BackingFile is { } backing ? ImageCreator.BackingLength(path, backing, options.BackingFormat) : null;
        long requested = options.Size ?? backingLength ?? throw new ArgumentException("Image creation needs a size parameter", nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(requested);
        ulong size = checked(((ulong)requested + 511) & ~511UL);
        Create.Qcow2Options? qcow2 = options.Format == QcowImageFormat.Qcow ? null : Qcow2Options(options, size);
        return ImageCreator.Creating(path, () =>
        {
            if (qcow2 is null)
            {
                ImageCreator.CreateQcowV1(path, size, options.BackingFile);
            }
            else
            {
                ImageCreator.CreateQcow2(path, qcow2);
            }

            // Qcow reads images with extended L2 entries or a data file but does not write them yet.
            bool readOnly = options.ExtendedL2 || options.DataFile != null;
            return Open(path, readOnly ? new QcowOpenOptions { ReadOnly = true, LoggerFactory = openOptions?.LoggerFactory } : openOptions);
        });
    }

    internal static Create.Qcow2Options Qcow2Options(QcowCreateOptions options, ulong size)
    {
        int version = options.Compat switch
        {
            "1.1" or "v3" => 3,
            "0.10" or "v2" => 2,
            _ => throw new ArgumentException($"compat must be 0.10 or 1.1, not '{options.Compat}'", nameof(options)),
        };
        if (!IsPowerOfTwo(options.ClusterSize) || !IsPowerOfTwo(options.RefcountBits))
        {
            throw new ArgumentException("cluster size and refcount bits must be powers of two", nameof(options));
        }

        return new Create.Qcow2Options(
            size,
            version,
            Log2(options.ClusterSize),
            Log2(options.RefcountBits),
            options.LazyRefcounts,
            options.CompressionType == QcowCompressionType.Zstd ? (byte)1 : (byte)0,
            Microsoft.FSharp.Core.OptionModule.OfObj(options.BackingFile),
            Microsoft.FSharp.Core.OptionModule.OfObj(options.BackingFormat),
            options.ExtendedL2,
            Microsoft.FSharp.Core.OptionModule.OfObj(options.DataFile),
            options.DataFileRaw);
    }

    /// <summary>Makes every completed write durable, in crash-safe order.</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Flush() => _device.Flush();

    /// <summary>Returns a seekable <see cref="Stream"/> over the virtual disk; disposing it leaves the image open.</summary>
    public Stream AsStream() => new QcowStream(this);

    /// <summary>Flushes (when writable) and closes the image and its backing files.</summary>
    public void Dispose() => _device.Dispose();

    /// <summary>Flushes (when writable) and closes the image and its backing files.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    private static int Log2(int n) => System.Numerics.BitOperations.Log2((uint)n);

    private static QcowInfo InfoOf(QcowDevice device)
    {
        Header? h = device.Header;
        ImageLayout layout = device.Layout;
        return new QcowInfo
        {
            Format = device.FormatName,
            Version = layout.Version,
            Compat = layout.Version switch { 3 => "1.1", 2 => "0.10", _ => "" },
            VirtualSize = device.Length,
            ClusterSize = layout.ClusterSize,
            RefcountBits = layout.HasRefcounts ? 1 << layout.Refcounts.RefcountOrder : 0,
            LazyRefcounts = h != null && HeaderModule.hasLazyRefcounts(h),
            Corrupt = h != null && HeaderModule.isCorrupt(h),
            Dirty = h != null && HeaderModule.isDirty(h),
            ExtendedL2 = h != null && (h.IncompatibleFeatures & HeaderModule.ExtendedL2Bit) != 0,
            CompressionType = layout.CompressionType == 1 ? "zstd" : "zlib",
            BackingFile = device.BackingFileName,
            FullBackingFile = device.BackingFileName is null ? null : ImageOpener.ResolveBacking(device.Path, device.BackingFileName),
            BackingFormat = device.BackingFormat,
            SnapshotCount = h is null ? 0 : (int)h.SnapshotCount,
            FeatureBits = h is null ? [0, 0, 0] : [h.IncompatibleFeatures, h.CompatibleFeatures, h.AutoclearFeatures],
        };
    }
}
