// Converting images: several sources one after another into a target of any format, as
// qemu-img convert does.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Copies the sources, one after another, into <paramref name="targetPath"/>, as qemu-img
    /// convert does: ranges that read as zeros are not read, runs of zeros are not written as data
    /// (see <see cref="QcowConvertOptions.MinSparse"/>), and the target is created first unless it
    /// exists already (<see cref="QcowConvertOptions.ExistingTarget"/>). The sources stay open.
    /// </summary>
    /// <param name="sources">The images to copy, in order; at least one.</param>
    /// <param name="targetPath">The target image file.</param>
    /// <param name="options">How to copy; null for the defaults (a new qcow2 image).</param>
    /// <param name="progress">Receives the percentage done, from 0 to 100.</param>
    /// <param name="cancellationToken">Stops the copy between chunks; a target it created is left as far as it got.</param>
    /// <exception cref="ArgumentException">An option is out of range or the combination is not allowed.</exception>
    /// <exception cref="NotSupportedException">Compression into a raw target.</exception>
    /// <exception cref="QcowFormatException">A source's metadata is malformed.</exception>
    /// <exception cref="System.IO.IOException">A file cannot be read or written ("error while writing at byte N" names where).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static void Convert(IReadOnlyList<QcowImage> sources, string targetPath, QcowConvertOptions? options = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(targetPath);
        options ??= new QcowConvertOptions();
        if (sources.Count == 0)
        {
            throw new ArgumentException("Expecting at least one source", nameof(sources));
        }

        if (options.MinSparse % 512 != 0 || options.MinSparse < 0 || options.MinSparse > 16 << 20)
        {
            throw new ArgumentException("Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16MiB", nameof(options));
        }

        if (options.Parallelism is < 1 or > 16)
        {
            throw new ArgumentException("Invalid number of coroutines. Allowed number of coroutines is between 1 and 16", nameof(options));
        }

        if (options.TargetIsZero && !options.ExistingTarget)
        {
            throw new ArgumentException("--target-is-zero requires use of -n flag", nameof(options));
        }

        bool targetHasBacking = options.Target.BackingFile != null;
        if (targetHasBacking && sources.Count > 1)
        {
            throw new ArgumentException("Having a backing file for the target makes no sense when concatenating multiple input images", nameof(options));
        }

        if (options.Bitmaps)
        {
            RefuseUncopiableBitmaps(sources, options);
        }

        IBlockDevice input = sources.Count == 1 ? sources[0].Device : new ConcatenatedDevice([.. sources.Select(s => s.Device)]);
        var openTarget = new QcowOpenOptions { Format = options.Target.Format, IgnoreFlushes = options.IgnoreFlushes };
        using QcowImage target = options.ExistingTarget
            ? Open(targetPath, openTarget)
            : Create(targetPath, options.Target with { Size = input.Length }, openTarget);
        if (options.Compress && target.Qcow is null)
        {
            throw new NotSupportedException("Compression not supported for this file format");
        }

        var copy = new CopyOptions(
            TargetReadsZero: options.MinSparse != 0 && !targetHasBacking && (!options.ExistingTarget || options.TargetIsZero),
            TargetHasBacking: targetHasBacking,
            MinSparse: options.MinSparse,
            Buffers: Math.Max(2, options.Parallelism / 2),
            Compressed: options.Compress);
        if (options.Bitmaps && target.Qcow is not { Layout.Version: >= 2 })
        {
            throw new NotSupportedException($"Format driver '{target.Device.FormatName}' does not support bitmaps");
        }

        ImageCopier.Copy(input, target.Device, copy, progress, cancellationToken);
        if (options.Bitmaps)
        {
            CopyBitmaps(sources[0], target, options);
        }

        target.Flush();
    }

    /// <summary>What qemu-img convert --bitmaps refuses before it makes the target.</summary>
    private static void RefuseUncopiableBitmaps(IReadOnlyList<QcowImage> sources, QcowConvertOptions options)
    {
        if (sources.Count > 1)
        {
            throw new ArgumentException("Copying bitmaps only possible with single source", nameof(options));
        }

        if (sources[0].Qcow is not { Layout.Version: >= 2 })
        {
            throw new NotSupportedException("Source lacks bitmap support");
        }

        if (!options.SkipBrokenBitmaps && sources[0].Bitmaps.FirstOrDefault(b => b.InUse) is { } broken)
        {
            throw new InvalidOperationException($"Cannot copy inconsistent bitmap '{broken.Name}'");
        }
    }

    /// <summary>Each bitmap of the source made anew in the target, in order, and its bits merged in.</summary>
    private static void CopyBitmaps(QcowImage source, QcowImage target, QcowConvertOptions options)
    {
        foreach (QcowBitmapInfo bitmap in source.Bitmaps)
        {
            if (bitmap.InUse)
            {
                options.BitmapSkipped?.Invoke(bitmap.Name);
                continue;
            }

            target.AddBitmap(bitmap.Name, new QcowBitmapOptions { Granularity = bitmap.Granularity, Disabled = !bitmap.Auto });
            target.MergeBitmap(bitmap.Name, bitmap.Name, source);
        }
    }
}
