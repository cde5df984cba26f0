// Examples of QcowClusterMap: an image file's host clusters by role.
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowClusterMapExamples;

public sealed class ClusterMapExamples
{
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
