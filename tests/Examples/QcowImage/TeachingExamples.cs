// Examples of the teaching data: Explain's walk, QcowGeometry's figures, QcowClusterMap's roles.
using System.Linq;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class TeachingExamples
{
    [Fact]
    public void Explain_NamesTheEntriesAndTheHostByte_OfAWrittenByte()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 8 << 20, ClusterSize = 4096 });
        image.Write(0x123456, new byte[] { 42 });
        image.Flush();

        QcowLayerExplanation layer = image.Explain(0x123456).Layers.Single();

        // 4 KiB clusters: l2_bits 9, so L1 index 0x123456 >> 21 = 0, L2 index (0x123456 >> 12) & 511 = 0x123.
        Assert.Equal((0, 0x123, 0x456L, QcowExplainVerdict.Data), (layer.L1Index, layer.L2Index, layer.OffsetInCluster, layer.Verdict));
        Assert.Equal(1UL, layer.L2Fields.Single(f => f.Name == "COPIED").Value);
        Assert.Equal((ulong)layer.HostCluster!.Value, layer.L2Fields.Single(f => f.Name == "host cluster").Value);
        byte[] file = System.IO.File.ReadAllBytes(dir.File("a.qcow2"));
        Assert.Equal(42, file[layer.HostOffset!.Value]);
    }

    [Fact]
    public void Geometry_Of1MiBWith512ByteClusters_IsTheHandComputedOne()
    {
        QcowGeometry g = QcowGeometry.Of(1 << 20, clusterSize: 512);

        // 2048 data clusters in 32 tables of 64 entries; L1 rounded up to a cluster of 64 entries;
        // 256 refcounts a block: 9 blocks for the 2082 + 9 + 1 clusters, and one table cluster.
        Assert.Equal((2048L, 32L, 64L, 9L, 1L), (g.DataClusters, g.L2Tables, g.L1Entries, g.RefcountBlocks, g.RefcountTableClusters));
        Assert.Equal(512 + (32 * 512) + 512 + (10 * 512), g.MetadataBytes);
    }

    [Fact]
    public void ClusterMap_OfAFreshImage_IsHeaderRefcountsL1_ThenTheWrittenClusters()
    {
        using var dir = new TempDir();
        using (QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20 }))
        {
            image.Write(0, new byte[] { 1 });
        }

        QcowClusterMap map = QcowClusterMap.Of(dir.File("a.qcow2"));

        Assert.Equal(65536, map.ClusterSize);
        Assert.Equal(
            [QcowClusterRole.Header, QcowClusterRole.RefcountTable, QcowClusterRole.RefcountBlock, QcowClusterRole.L1Table, QcowClusterRole.L2Table, QcowClusterRole.Data],
            map.Roles);
    }
}
