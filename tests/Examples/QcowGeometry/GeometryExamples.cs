// Examples of QcowGeometry: what a qcow2 image of a size costs, figure by figure.
using Xunit;

namespace Qcow.Examples.QcowGeometryExamples;

public sealed class GeometryExamples
{
    [Fact]
    public void Geometry_Of1MiBWith512ByteClusters_IsTheHandComputedOne()
    {
        QcowGeometry g = QcowGeometry.Of(1 << 20, clusterSize: 512);

        // 2048 data clusters in 32 tables of 64 entries; L1 rounded up to a cluster of 64 entries;
        // 256 refcounts a block: 9 blocks for the 2082 + 9 + 1 clusters, and one table cluster.
        Assert.Equal((2048L, 32L, 64L, 9L, 1L), (g.DataClusters, g.L2Tables, g.L1Entries, g.RefcountBlocks, g.RefcountTableClusters));
        Assert.Equal(512 + (32 * 512) + 512 + (10 * 512), g.MetadataBytes);
    }
}
