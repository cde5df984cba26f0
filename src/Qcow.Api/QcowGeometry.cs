// What a qcow2 image of a given size costs in metadata: the figures qemu-img measure adds up,
// each one on its own, for teaching (qcow geometry) and for planning.
using System;
using System.Numerics;
using Qcow.Format;

namespace Qcow;

/// <summary>The tables a qcow2 image of a given size and cluster size needs, fully allocated.</summary>
public sealed class QcowGeometry
{
    private QcowGeometry()
    {
    }

    /// <summary>The virtual size the figures are for, in bytes.</summary>
    public long VirtualSize { get; private init; }

    /// <summary>Cluster size in bytes.</summary>
    public int ClusterSize { get; private init; }

    /// <summary>log2 of the cluster size.</summary>
    public int ClusterBits { get; private init; }

    /// <summary>Refcount width in bits.</summary>
    public int RefcountBits { get; private init; }

    /// <summary>Bytes per L2 entry: 8, or 16 with extended L2 entries.</summary>
    public int L2EntryBytes { get; private init; }

    /// <summary>Data bytes: the virtual size rounded up to whole clusters.</summary>
    public long DataBytes { get; private init; }

    /// <summary>Data clusters.</summary>
    public long DataClusters => DataBytes / ClusterSize;

    /// <summary>L2 entries per table (cluster size / entry size).</summary>
    public long EntriesPerL2Table => ClusterSize / L2EntryBytes;

    /// <summary>L2 tables that map every data cluster.</summary>
    public long L2Tables { get; private init; }

    /// <summary>Bytes of those L2 tables.</summary>
    public long L2Bytes { get; private init; }

    /// <summary>L1 entries, rounded up to whole clusters of 8-byte entries.</summary>
    public long L1Entries { get; private init; }

    /// <summary>Bytes of the L1 table.</summary>
    public long L1Bytes { get; private init; }

    /// <summary>Refcounts per refcount block (cluster size × 8 / refcount width).</summary>
    public long RefcountsPerBlock => (long)ClusterSize * 8 / RefcountBits;

    /// <summary>Refcount blocks that count every cluster, themselves and the table included.</summary>
    public long RefcountBlocks { get; private init; }

    /// <summary>Clusters of the refcount table.</summary>
    public long RefcountTableClusters { get; private init; }

    /// <summary>Bytes of the refcount blocks and table.</summary>
    public long RefcountBytes { get; private init; }

    /// <summary>Header, L2 tables, L1 table and refcount structures, in bytes.</summary>
    public long MetadataBytes { get; private init; }

    /// <summary>Metadata and data: qemu-img measure's "fully allocated size".</summary>
    public long FullyAllocated { get; private init; }

    /// <summary>The metadata with no data: qemu-img measure's "required size" for an empty image.</summary>
    public long Required { get; private init; }

    /// <summary>The figures for a qcow2 image of <paramref name="virtualSize"/> bytes.</summary>
    /// <param name="virtualSize">The disk's size in bytes.</param>
    /// <param name="clusterSize">A power of two from 512 to 2 MiB. Default: 65536.</param>
    /// <param name="refcountBits">A power of two from 1 to 64. Default: 16.</param>
    /// <param name="extendedL2">16-byte L2 entries with subclusters. Default: false.</param>
    /// <exception cref="ArgumentException">The cluster size or refcount width is out of range.</exception>
    /// <exception cref="InvalidOperationException">The size needs a larger L1 table than QEMU allows: a larger cluster size is needed.</exception>
    public static QcowGeometry Of(long virtualSize, int clusterSize = 65536, int refcountBits = 16, bool extendedL2 = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(virtualSize);
        if (!BitOperations.IsPow2(clusterSize) || clusterSize < 512 || clusterSize > 2 << 20 || !BitOperations.IsPow2(refcountBits) || refcountBits > 64)
        {
            throw new ArgumentException("cluster_size must be a power of two from 512 to 2M, refcount_bits one from 1 to 64");
        }

        int bits = BitOperations.Log2((uint)clusterSize);
        if (!Measure.fitsL1Limit(virtualSize, bits, extendedL2))
        {
            throw new InvalidOperationException("The image size is too large (try using a larger cluster size)");
        }

        Measure.Costs c = Measure.costs(virtualSize, bits, BitOperations.Log2((uint)refcountBits), extendedL2);
        return new QcowGeometry
        {
            VirtualSize = virtualSize,
            ClusterSize = clusterSize,
            ClusterBits = bits,
            RefcountBits = refcountBits,
            L2EntryBytes = (int)c.L2EntryBytes,
            DataBytes = c.DataBytes,
            L2Tables = c.L2Tables,
            L2Bytes = c.L2Bytes,
            L1Entries = c.L1Entries,
            L1Bytes = c.L1Bytes,
            RefcountBlocks = c.RefcountBlocks,
            RefcountTableClusters = c.RefcountTableClusters,
            RefcountBytes = c.RefcountBytes,
            MetadataBytes = c.MetadataBytes,
            FullyAllocated = c.FullyAllocated,
            Required = Measure.required(c, 0),
        };
    }
}
