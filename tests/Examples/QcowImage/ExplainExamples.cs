// Examples of QcowImage.Explain: the walk from a guest byte to its host byte.
using System.Linq;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class ExplainExamples
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
}
