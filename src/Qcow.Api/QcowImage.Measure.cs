// Measuring what a new image needs, as qemu-img measure does: from a size, or from an existing
// image's allocation.
using System;
using System.Numerics;
using System.Threading;
using Qcow.IO;
using Sizing = Qcow.Format.Measure;

namespace Qcow;

/// <summary>What a new image takes on disk, as qemu-img measure reports it.</summary>
/// <param name="Required">Bytes the new image needs for the data it would hold, and its metadata.</param>
/// <param name="FullyAllocated">Bytes it would take with every cluster allocated.</param>
/// <param name="Bitmaps">Bytes the source's persistent bitmaps would take in a qcow2 version 3 target; null when there are none to carry.</param>
public sealed record QcowMeasurement(long Required, long FullyAllocated, long? Bitmaps);

public sealed partial class QcowImage
{
    /// <summary>
    /// What an image made with <paramref name="target"/>'s options would take: for a disk of
    /// <see cref="QcowCreateOptions.Size"/> bytes holding nothing, or holding what
    /// <paramref name="source"/> holds (its data, through its backing chain, and its bitmaps).
    /// </summary>
    /// <param name="target">The new image's format and options (qcow2 or raw).</param>
    /// <param name="source">The image whose content the new one would hold; null measures an empty disk of the target's size.</param>
    /// <param name="cancellationToken">Stops the walk over the source's allocation.</param>
    /// <exception cref="NotSupportedException">The target is qcow v1, which qemu-img does not measure.</exception>
    /// <exception cref="ArgumentException">No size and no source, or options out of range.</exception>
    /// <exception cref="InvalidOperationException">The size is too large for the cluster size.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static QcowMeasurement Measure(QcowCreateOptions target, QcowImage? source = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        long size = source?.Length ?? target.Size ?? throw new ArgumentException("Either a size or a source must be given", nameof(target));
        return target.Format switch
        {
            QcowImageFormat.Raw => new QcowMeasurement((size + 511) & ~511L, (size + 511) & ~511L, null),
            QcowImageFormat.Qcow2 => Qcow2Measurement(size, source, target, cancellationToken),
            _ => throw new NotSupportedException("Block driver 'qcow' does not support size measurement"),
        };
    }

    private static QcowMeasurement Qcow2Measurement(long size, QcowImage? source, QcowCreateOptions target, CancellationToken cancellationToken)
    {
        int clusterSize = target.ClusterSize;
        if (!BitOperations.IsPow2(clusterSize) || clusterSize < 512 || clusterSize > 2 << 20 || !BitOperations.IsPow2(target.RefcountBits) || target.RefcountBits > 64)
        {
            throw new ArgumentException("Invalid cluster_size or refcount_bits", nameof(target));
        }

        int clusterBits = BitOperations.Log2((uint)clusterSize);
        long virtualSize = (size + clusterSize - 1) / clusterSize * clusterSize;
        if (!Sizing.fitsL1Limit(virtualSize, clusterBits, target.ExtendedL2))
        {
            throw new InvalidOperationException("The image size is too large (try using a larger cluster size)");
        }

        long needed = source is null ? 0 : target.BackingFile != null ? virtualSize : NeededData(source.Device, clusterSize, cancellationToken);
        if (target.Preallocation is QcowPreallocation.Full or QcowPreallocation.Falloc)
        {
            needed = virtualSize;
        }

        Sizing.Costs costs = Sizing.costs(virtualSize, clusterBits, BitOperations.Log2((uint)target.RefcountBits), target.ExtendedL2);
        long? bitmaps = target.Compat == QcowCompat.V1_1 && source?.Qcow is { Layout.Version: 3 } q ? BitmapBytes(q, clusterSize) : null;
        return new QcowMeasurement(Sizing.required(costs, needed), costs.FullyAllocated, bitmaps);
    }

    /// <summary>
    /// qcow2_measure_bitmaps: every persistent bitmap of the source, fully allocated in the new
    /// image's clusters, its table, and its directory entry.
    /// </summary>
    private static long BitmapBytes(QcowDevice source, long clusterSize)
    {
        long total = 0;
        long directory = 0;
        foreach (var bitmap in source.ReadBitmaps().Bitmaps)
        {
            long clusters = (long)global::Qcow.Format.Bitmaps.tableEntriesFor(BitOperations.Log2((ulong)clusterSize), (ulong)source.Length, bitmap.GranularityBits);
            total += (clusters * clusterSize) + RoundUp(clusters * 8, clusterSize);
            directory += global::Qcow.Format.Bitmaps.entryBytes(bitmap.Name);
        }

        return total + RoundUp(directory, clusterSize);
    }

    private static long RoundUp(long n, long to) => (n + to - 1) / to * to;

    /// <summary>Clusters holding data anywhere in the source's chain, counted from their start as qemu-img counts them.</summary>
    private static long NeededData(IBlockDevice source, long clusterSize, CancellationToken cancellationToken)
    {
        long needed = 0;
        for (long offset = 0; offset < source.Length;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            BlockStatus s = source.Status(offset, source.Length - offset);
            long length = s.Length;
            if (!s.Zero && s.Data && s.Present)
            {
                length = ((offset + length + clusterSize - 1) / clusterSize * clusterSize) - offset;
                needed += (offset % clusterSize) + length;
            }

            offset += length;
        }

        return needed;
    }
}
