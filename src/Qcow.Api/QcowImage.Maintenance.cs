// Offline changes to an image file: resize and amend, each with the file to itself.
using System;
using System.Numerics;
using System.Threading;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.FSharp.Core;
using Qcow.Format;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Changes the virtual size of a closed image, as qemu-img resize does. Growing a qcow2 image
    /// makes room in its L1 table and, over a longer backing file, zeroes the new area; shrinking
    /// (allowed only with <see cref="QcowResizeOptions.Shrink"/>) frees the clusters past the new
    /// end. A raw file is truncated or extended.
    /// </summary>
    /// <param name="path">The image file; no one else may have it open.</param>
    /// <param name="newSize">The new virtual size in bytes.</param>
    /// <param name="options">How to resize; null for the defaults.</param>
    /// <param name="progress">Receives the percentage of the grown area preallocated (100 when done).</param>
    /// <param name="cancellationToken">Stops a preallocation between clusters; the image keeps its new size.</param>
    /// <exception cref="InvalidOperationException">A shrink without <see cref="QcowResizeOptions.Shrink"/> ("Use the --shrink option"), a size too large, or a format that cannot be resized.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The size is negative.</exception>
    /// <exception cref="QcowFormatException">The image is not a valid image of its format.</exception>
    /// <exception cref="QcowLockedException">Another process has the image open.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read or written.</exception>
    public static void Resize(string path, long newSize, QcowResizeOptions? options = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfNegative(newSize);
        options ??= new QcowResizeOptions();
        cancellationToken.ThrowIfCancellationRequested();
        ILogger logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Qcow");
        string? format = options.Format is { } f ? FormatNames.Name(f) : null;
        ImageResizer.Resize(path, format, newSize, options.Shrink, logger, FormatNames.Name(options.Preallocation), progress, cancellationToken);
        progress?.Report(100);
    }

    /// <summary>
    /// Changes a closed qcow2 image's format options in place, as qemu-img amend does: the compat
    /// level, lazy refcounts and the refcount width. New refcount structures are made durable
    /// before one header write switches to them, so a crash leaves the old image or the new one.
    /// </summary>
    /// <param name="path">The image file; no one else may have it open.</param>
    /// <param name="options">What to change.</param>
    /// <param name="progress">Receives 100 when the change is made (it is one step).</param>
    /// <param name="cancellationToken">Checked before the change starts.</param>
    /// <exception cref="InvalidOperationException">The image is not qcow2, or the change is one QEMU refuses or Qcow cannot make yet; the message says which.</exception>
    /// <exception cref="ArgumentException">A refcount width that is not a power of two from 1 to 64.</exception>
    /// <exception cref="QcowFormatException">The image is not a valid qcow2 image.</exception>
    /// <exception cref="QcowLockedException">Another process has the image open.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read or written.</exception>
    public static void Amend(string path, QcowAmendOptions options, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        if (options.RefcountBits is { } bits && (bits is < 1 or > 64 || !BitOperations.IsPow2(bits)))
        {
            throw new ArgumentException("Refcount width must be a power of two and may not exceed 64 bits", nameof(options));
        }

        QcowImageFormat format = Probe(path);
        if (format != QcowImageFormat.Qcow2)
        {
            throw new InvalidOperationException($"Format driver '{FormatNames.Name(format)}' does not support option amendment");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var amend = new AmendRequest(
            OptionModule.OfNullable(options.Compat is { } c ? (c == QcowCompat.V0_10 ? 2 : 3) : (int?)null),
            OptionModule.OfNullable(options.LazyRefcounts),
            OptionModule.OfNullable(options.RefcountBits is { } b ? BitOperations.Log2((uint)b) : (int?)null));
        ImageAmender.Amend(path, amend, (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Qcow"));
        progress?.Report(100);
    }
}
