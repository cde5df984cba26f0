// Examples of block status: QcowImage.Map's extents are qemu-img map's, and GetBlockStatus
// answers one run at a time.
using System.Linq;
using System.Text.Json.Nodes;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class MapExamples
{
    [OracleFact]
    public void Map_IsQemuImgMapsExtents_ThroughTheBackingChain()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "4M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 1 0 1M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        Qemu.Io(dir.Path, "top.qcow2", "write -P 2 512k 64k", "write -z 2M 64k");
        JsonArray theirs = JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "top.qcow2"))!.AsArray();

        using QcowImage image = QcowImage.Open(dir.File("top.qcow2"), new QcowOpenOptions { ReadOnly = true });
        QcowExtent[] mine = [.. image.Map()];

        Assert.Equal(theirs.Count, mine.Length);
        foreach ((JsonNode? t, QcowExtent m) in theirs.Zip(mine))
        {
            Assert.Equal(((long)t!["start"]!, (long)t["length"]!, (int)t["depth"]!, (bool)t["present"]!, (bool)t["zero"]!, (bool)t["data"]!), (m.Offset, m.Length, m.Depth, m.Present, m.Zero, m.Data));
            Assert.Equal(t["offset"] is { } o ? (long)o : null, m.HostOffset);
        }
    }

    [Fact]
    public void GetBlockStatus_AnswersARunOfAlikeClusters_WhichMapMerges()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 8 << 20 });
        image.Write(4 << 20, new byte[] { 9 });

        QcowExtent hole = image.GetBlockStatus(0, 8 << 20);
        QcowExtent data = image.GetBlockStatus(4 << 20, 1);

        // One call answers the whole run the L2 table maps alike, up to the data; Map merges runs across tables.
        Assert.Equal((0L, 4L << 20, false, true, false, (long?)null), (hole.Offset, hole.Length, hole.Present, hole.Zero, hole.Data, hole.HostOffset));
        Assert.Equal((1L, true, true), (data.Length, data.Present, data.Data));
        Assert.NotNull(data.HostOffset);
        Assert.Equal([(0L, 4L << 20, false), (4L << 20, 65536L, true), ((4L << 20) + 65536, (4L << 20) - 65536, false)], image.Map().Select(e => (e.Offset, e.Length, e.Present)));
    }
}
