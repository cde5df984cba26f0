// The facts of an open image that the shell works from, taken from its header once.
using Qcow.Format;

namespace Qcow.IO;

internal sealed record ImageLayout(
    string Path,
    int Version,
    Geometry Geometry,
    EntryFormat EntryFormat,
    RefcountGeometry Refcounts,
    ulong VirtualSize,
    ulong L1Offset,
    int L1Size,
    ulong RefcountTableOffset,
    uint RefcountTableClusters,
    byte CompressionType)
{
    public int ClusterSize => 1 << Geometry.ClusterBits;

    /// <summary>16-byte L2 entries: 32 subclusters per cluster, each with its own state.</summary>
    public bool ExtendedL2 => Geometry.L2EntryBytes == 16;

    /// <summary>The unit of allocation state: a subcluster with extended L2 entries, a cluster otherwise.</summary>
    public int SubclusterSize => ExtendedL2 ? ClusterSize / 32 : ClusterSize;

    public int L2TableBytes => GeometryModule.l2TableBytes(Geometry);

    public bool HasRefcounts => Version >= 2;

    /// <summary>A guest offset's L1 index: offset >> (cluster_bits + l2_bits).</summary>
    public int L1Shift => Geometry.ClusterBits + Geometry.L2Bits;
}
