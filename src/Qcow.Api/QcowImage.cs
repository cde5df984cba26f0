// The public entry point: a disk image (qcow2, qcow or raw), opened or created, read and written
// by guest offset.
using System;
using System.IO;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Format;
using Qcow.IO;

namespace Qcow;

/// <summary>
/// A qcow2 (versions 2 and 3), qcow (version 1) or raw disk image. Reads and writes address the
/// virtual disk the guest sees. One instance may be used from several threads at once.
/// </summary>
public sealed partial class QcowImage : IDisposable, IAsyncDisposable
{
    private readonly IBlockDevice _device;

    private QcowImage(IBlockDevice device)
    {
        _device = device;
    }

    /// <summary>The image file's path.</summary>
    public string Path => _device.Path;

    /// <summary>The image's format.</summary>
    public QcowImageFormat Format => FormatNames.Parse(_device.FormatName);

    /// <summary>The virtual disk's size in bytes.</summary>
    public long Length => _device.Length;

    /// <summary>False when the image was opened read-only.</summary>
    public bool CanWrite => _device.CanWrite;

    /// <summary>
    /// The format facts of the image and, when its backing files were opened, of its backing
    /// chain. Reading it reads the header's extensions (bitmap directory, encryption header).
    /// </summary>
    public QcowInfo Info => QcowInfo.Of(_device);

    /// <summary>The device itself, for the library's own operations on the image.</summary>
    internal IBlockDevice Device => _device;

    /// <summary>Each write is flushed before it returns (QcowOpenOptions.WriteThrough).</summary>
    internal bool WriteThrough { get; init; }

    /// <summary>The device as a qcow or qcow2 image, or null for raw.</summary>
    internal QcowDevice? Qcow => _device as QcowDevice;

    /// <summary>Opens an existing image.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="options">How to open it; null for the defaults (read-write, qcow or qcow2).</param>
    /// <exception cref="QcowFormatException">The file is not a valid image of the format, or uses an unsupported feature.</exception>
    /// <exception cref="UnauthorizedAccessException">The referenced-file policy refused the backing file.</exception>
    /// <exception cref="QcowLockedException">Another process (QEMU or Qcow) holds the image in a conflicting way.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="ArgumentException">Sharing was forced on a read-write open, or a backing file's recorded format names no driver.</exception>
    public static QcowImage Open(string path, QcowOpenOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new QcowOpenOptions();
        if (options.ForceShare && !options.ReadOnly)
        {
            throw new ArgumentException("ForceShare can only be used with read-only opens, as qemu-img's -U", nameof(options));
        }

        OpenSettings settings = Settings(options);
        IBlockDevice device = options.Format is { } format
            ? ImageOpener.Open(path, FormatNames.Name(format), settings)
            : ImageOpener.OpenQcow(path, settings);
        return new QcowImage(device) { WriteThrough = options.WriteThrough };
    }

    /// <summary>
    /// Opens an image stored in a stream: a file Qcow does not open itself, or another image's
    /// virtual disk (QEMU's format over format: <c>QcowImage.Open(container.AsStream(closeImage: true))</c>). No
    /// image locks are taken; the stream's owner decides who else may use it.
    /// </summary>
    /// <param name="stream">Readable and seekable; writable unless <see cref="QcowOpenOptions.ReadOnly"/>.</param>
    /// <param name="options">How to open it; null for the defaults (read-write, qcow or qcow2).</param>
    /// <param name="name">What messages call the image, and the place relative backing file names are resolved from; null: "stream".</param>
    /// <param name="leaveOpen">Leave the stream open when the image is disposed.</param>
    /// <exception cref="QcowFormatException">The bytes are not a valid image of the format, or use an unsupported feature.</exception>
    /// <exception cref="ArgumentException">The stream cannot be read, sought or (for a read-write open) written.</exception>
    /// <exception cref="IOException">The stream cannot be read.</exception>
    public static QcowImage Open(Stream stream, QcowOpenOptions? options = null, string? name = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new QcowOpenOptions();
        // From here the device owns the storage: a failed open disposes it (and so the stream, unless left open).
        var storage = new StreamStorage(stream, name ?? "stream", !options.ReadOnly, leaveOpen);
        return new QcowImage(ImageOpener.Open(storage, options.Format is { } format ? FormatNames.Name(format) : null, Settings(options))) { WriteThrough = options.WriteThrough };
    }

    private static OpenSettings Settings(QcowOpenOptions options) => new(
        !options.ReadOnly,
        options.ForceCorrupt,
        options.CacheSize,
        options.LoggerFactory ?? NullLoggerFactory.Instance,
        options.ReferencedFiles,
        IgnoreFlushes: options.IgnoreFlushes,
        ForceShare: options.ForceShare,
        OpenBackingFiles: options.OpenBackingFiles,
        PassDiscards: options.PassDiscards,
        FaultInjection: options.FaultInjection,
        BackingFormat: options.BackingFormat is { } backing ? FormatNames.Name(backing) : null,
        Snapshot: SnapshotChoiceOf(options));

    /// <summary>The snapshot an open reads, by the options that name one; an open for writing may name none.</summary>
    private static SnapshotChoice? SnapshotChoiceOf(QcowOpenOptions options)
    {
        SnapshotChoice? choice = options.Snapshot is { } s
            ? new SnapshotChoice(s, null, IdOrName: true)
            : options.SnapshotId is not null || options.SnapshotName is not null ? new SnapshotChoice(options.SnapshotId, options.SnapshotName) : null;
        return choice is not null && !options.ReadOnly
            ? throw new ArgumentException("An internal snapshot can only be opened read-only", nameof(options))
            : choice;
    }

    /// <summary>Wraps a device the library opened itself (tests open devices over their own storage).</summary>
    internal static QcowImage Of(IBlockDevice device) => new(device);

    /// <summary>
    /// Creates a new image (replacing any file at <paramref name="path"/>) and opens it
    /// read-write. A backing file is opened first, as qemu-img create opens it: for its size when
    /// <see cref="QcowCreateOptions.Size"/> is null, and to refuse one that cannot be opened
    /// (unless <see cref="QcowCreateOptions.OpenBackingFile"/> is false). A create that fails
    /// leaves no new file behind.
    /// </summary>
    /// <param name="path">The file to create.</param>
    /// <param name="options">What to create.</param>
    /// <param name="openOptions">How to open the new image; its format is the created one. Null: read-write.</param>
    /// <exception cref="ArgumentException">An option is out of range or the combination is not allowed.</exception>
    /// <exception cref="IOException">The file cannot be written, or the backing file cannot be opened.</exception>
    public static QcowImage Create(string path, QcowCreateOptions options, QcowOpenOptions? openOptions = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        Action write = NewImageWriter(path, options);
        return ImageCreator.Creating(path, () =>
        {
            write();
            // Qcow reads images with extended L2 entries or a data file but does not write them yet.
            QcowOpenOptions how = openOptions ?? new QcowOpenOptions();
            return Open(path, how with
            {
                Format = options.Format,
                ReadOnly = how.ReadOnly || options.ExtendedL2 || options.DataFile != null,
                OpenBackingFiles = options.OpenBackingFile && how.OpenBackingFiles,
            });
        });
    }

    /// <summary>
    /// Checks the options (opening the backing file, as qemu-img create does, unless told not to)
    /// and returns what writes the new file, so that nothing is written for options that fail.
    /// </summary>
    private static Action NewImageWriter(string path, QcowCreateOptions options)
    {
        if (options.Format != QcowImageFormat.Qcow2 && options.Preallocation != QcowPreallocation.Off)
        {
            throw new ArgumentException($"preallocation={FormatNames.Name(options.Preallocation)} is not supported by qcow for {FormatNames.Name(options.Format)}", nameof(options));
        }

        if (options.Format == QcowImageFormat.Raw && options.BackingFile != null)
        {
            throw new ArgumentException("raw images have no backing file", nameof(options));
        }

        string? backingFormat = options.BackingFormat is { } f ? FormatNames.Name(f) : null;
        long? backingLength = options.BackingFile is { } backing && options.OpenBackingFile ? ImageCreator.BackingLength(path, backing, backingFormat) : null;
        long requested = options.Size ?? backingLength ?? throw new ArgumentException("Image creation needs a size parameter", nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(requested);
        ulong size = checked(((ulong)requested + 511) & ~511UL);
        Create.Qcow2Options? qcow2 = options.Format == QcowImageFormat.Qcow2 ? Qcow2Options(options, size) : null;
        return options.Format switch
        {
            QcowImageFormat.Raw => () => ImageCreator.CreateRaw(path, (long)size),
            QcowImageFormat.Qcow => () => ImageCreator.CreateQcowV1(path, size, options.BackingFile),
            _ => () => ImageCreator.CreateQcow2(path, qcow2!, FormatNames.Name(options.Preallocation)),
        };
    }

    /// <summary>
    /// The path a backing file name resolves to: a relative name is relative to the directory of
    /// the image that names it, as QEMU joins them.
    /// </summary>
    /// <param name="imagePath">The image that names the backing file.</param>
    /// <param name="backingFile">The name as stored in (or given for) the image.</param>
    public static string ResolveBackingFile(string imagePath, string backingFile) => ImageOpener.ResolveBacking(imagePath, backingFile);

    /// <summary>
    /// The virtual size of the backing file a new image at <paramref name="imagePath"/> would
    /// name, opened as <see cref="Create"/> opens it: shared with any writer, its own backing
    /// files left closed.
    /// </summary>
    /// <exception cref="IOException">The backing file cannot be opened; the message ends "Could not open backing image.", as qemu-img's.</exception>
    public static long GetBackingFileLength(string imagePath, string backingFile, QcowImageFormat? backingFormat = null)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        ArgumentNullException.ThrowIfNull(backingFile);
        return ImageCreator.BackingLength(imagePath, backingFile, backingFormat is { } f ? FormatNames.Name(f) : null);
    }

    internal static Create.Qcow2Options Qcow2Options(QcowCreateOptions options, ulong size)
    {
        if (!IsPowerOfTwo(options.ClusterSize))
        {
            throw new ArgumentException("Cluster size must be a power of two between 512 and 2048k", nameof(options));
        }

        if (!IsPowerOfTwo(options.RefcountBits))
        {
            throw new ArgumentException("Refcount width must be a power of two and may not exceed 64 bits", nameof(options));
        }

        return new Create.Qcow2Options(
            size,
            options.Compat == QcowCompat.V0_10 ? 2 : 3,
            Log2(options.ClusterSize),
            Log2(options.RefcountBits),
            options.LazyRefcounts,
            options.CompressionType == QcowCompressionType.Zstd ? (byte)1 : (byte)0,
            Microsoft.FSharp.Core.OptionModule.OfObj(options.BackingFile),
            Microsoft.FSharp.Core.OptionModule.OfObj(options.BackingFormat is { } f ? FormatNames.Name(f) : null),
            options.ExtendedL2,
            Microsoft.FSharp.Core.OptionModule.OfObj(options.DataFile),
            options.DataFileRaw);
    }

    /// <summary>Makes every completed write durable, in crash-safe order.</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Flush() => _device.Flush();

    /// <summary>Returns a seekable <see cref="Stream"/> over the virtual disk.</summary>
    /// <param name="closeImage">Disposing the stream disposes the image too (for a stream handed to an owner, such as an image stored inside this one); false leaves the image open.</param>
    public Stream AsStream(bool closeImage = false) => new QcowStream(this, closeImage);

    /// <summary>Flushes (when writable) and closes the image and its backing files.</summary>
    public void Dispose() => _device.Dispose();

    /// <summary>Flushes (when writable) and closes the image and its backing files, on a thread-pool thread as <see cref="FlushAsync"/> flushes.</summary>
    public async ValueTask DisposeAsync() => await Task.Run(Dispose).ConfigureAwait(false);

    private static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    private static int Log2(int n) => System.Numerics.BitOperations.Log2((uint)n);
}
