// explain and geometry: hand-computed cases for each cluster size class and each kind of entry,
// and agreement with qemu-img map (where a byte lives) and qemu-img measure (what an image costs).
using System.IO;
using System.Text.Json.Nodes;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class TeachingVerbsTests
{
    [OracleTheory]
    // 512 B clusters: l2_bits 6, so L1 index = 0x123456 >> 15 = 36, L2 index = (0x123456 >> 9) & 63 = 26.
    [InlineData("cluster_size=512", "0x123456", 36, 26, 0x56)]
    // 64 KiB clusters: l2_bits 13: 0x123456 >> 29 = 0, (0x123456 >> 16) & 0x1fff = 18.
    [InlineData("cluster_size=64k", "0x123456", 0, 18, 0x3456)]
    // 2 MiB clusters: l2_bits 18: 5 GiB >> 39 = 0, (5 GiB >> 21) & 0x3ffff = 2560.
    [InlineData("cluster_size=2M", "5G", 0, 2560, 0)]
    // 4 KiB clusters: l2_bits 9: 5 GiB >> 21 = 2560, (5 GiB >> 12) & 511 = 0.
    [InlineData("cluster_size=4k", "5G", 2560, 0, 0)]
    public void Explain_ComputesTheIndices_AndFindsTheByteWhereQemuImgMapSaysItIs(string options, string offset, int l1, int l2, int inCluster)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", options, "e.qcow2", "8G");
        Qemu.Io(dir.Path, "e.qcow2", $"write -P 7 {offset} 1");

        JsonNode layer = Explain(dir.File("e.qcow2"), offset)["chain"]![0]!;

        Assert.Equal(l1, (int)layer["l1-index"]!);
        Assert.Equal(l2, (int)layer["l2-index"]!);
        Assert.Equal(inCluster, (long)layer["offset-in-cluster"]!);
        Assert.Equal("data", (string)layer["type"]!);
        Assert.Equal(MappedOffset(dir, "e.qcow2", Cli.Sizes.Parse(offset)), (long)layer["host-offset"]!);
        Assert.Equal(7, File.ReadAllBytes(dir.File("e.qcow2"))[(long)layer["host-offset"]!]);
    }

    [OracleFact]
    public void Explain_NamesEachKindOfEntry_DownTheBackingChain()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow", "base.qcow", "16M");
        Qemu.Ok("qemu-io", dir.Path, "-f", "qcow", "-c", "write -P 1 4M 64k", "base.qcow");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow", "-F", "qcow", "top.qcow2", "32M");
        Qemu.Io(dir.Path, "top.qcow2", "write -c -P 2 0 64k", "write -z 1M 64k", "write -P 3 2M 64k");

        Assert.Equal("compressed", Type(dir, "0x100", 0));
        Assert.Equal("zero", Type(dir, "1M", 0));
        Assert.Equal("data", Type(dir, "2M", 0));
        Assert.Equal("unallocated", Type(dir, "3M", 0));
        Assert.Equal("unallocated", Type(dir, "20M", 0));
        JsonNode deeper = Explain(dir.File("top.qcow2"), "4M")["chain"]![1]!;
        Assert.Equal("data", (string)deeper["type"]!);
        Assert.Equal(1, (int)deeper["depth"]!);
        Assert.Equal(MappedOffset(dir, "top.qcow2", 4 << 20), (long)deeper["host-offset"]!);

        var human = new StringWriter();
        Assert.Equal(0, Cli.Cli.Run(["explain", dir.File("top.qcow2"), "0x100"], human, new StringWriter()));
        Assert.Contains("bit 62     COMPRESSED       1  (x = 62 - (cluster_bits - 8) = 54)", human.ToString());
        Assert.Contains("=> compressed: the stream at 0x", human.ToString());
    }

    [OracleFact]
    public void Explain_OfAnExtendedL2Image_NamesTheSubcluster()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "x.qcow2", "16M");
        Qemu.Io(dir.Path, "x.qcow2", "write -P 5 6k 2k");

        // 64 KiB clusters, 2 KiB subclusters: 6 KiB is subcluster 3, allocated; 8 KiB is subcluster 4, not.
        JsonNode data = Explain(dir.File("x.qcow2"), "0x1800")["chain"]![0]!;
        JsonNode hole = Explain(dir.File("x.qcow2"), "0x2000")["chain"]![0]!;

        Assert.Equal(("data", 3), ((string)data["type"]!, (int)data["subcluster"]!));
        Assert.Equal(MappedOffset(dir, "x.qcow2", 0x1800), (long)data["host-offset"]!);
        Assert.Equal(("unallocated", 4), ((string)hole["type"]!, (int)hole["subcluster"]!));
    }

    [OracleTheory]
    [InlineData("1G", "")]
    [InlineData("1M", "cluster_size=512")]
    [InlineData("3T", "cluster_size=2M,refcount_bits=64")]
    [InlineData("100G", "cluster_size=4k,refcount_bits=1")]
    [InlineData("10G", "extended_l2=on")]
    public void Geometry_TotalsAreQemuImgMeasures(string size, string options)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        JsonNode theirs = JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, ["measure", "--output=json", "-O", "qcow2", .. o, "--size", size]))!;
        var stdout = new StringWriter();

        Assert.Equal(0, Cli.Cli.Run(["geometry", "--output=json", .. o, size], stdout, new StringWriter()));

        JsonNode mine = JsonNode.Parse(stdout.ToString())!;
        Assert.Equal((long)theirs["fully-allocated"]!, (long)mine["fully-allocated"]!);
        Assert.Equal((long)theirs["required"]!, (long)mine["required"]!);
    }

    [Fact]
    public void Geometry_Of1MiBWith512ByteClusters_IsTheHandComputedOne()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, Cli.Cli.Run(["geometry", "--output=json", "-o", "cluster_size=512", "1M"], stdout, new StringWriter()));
        JsonNode g = JsonNode.Parse(stdout.ToString())!;

        // 2048 data clusters; 64 entries per L2 table → 32 tables; L1: 32 entries rounded up to a
        // cluster of 64; 256 refcounts per block → 9 blocks for 2082 + 9 + 1 clusters; 1 table cluster.
        Assert.Equal(2048, (long)g["data-clusters"]!);
        Assert.Equal(32, (long)g["l2-tables"]!);
        Assert.Equal(64, (long)g["l1-entries"]!);
        Assert.Equal(9, (long)g["refcount-blocks"]!);
        Assert.Equal(1, (long)g["refcount-table-clusters"]!);
        Assert.Equal(512 + (32 * 512) + 512 + (10 * 512), (long)g["metadata-bytes"]!);
    }

    private static string Type(TempDir dir, string offset, int depth) =>
        (string)Explain(dir.File("top.qcow2"), offset)["chain"]![depth]!["type"]!;

    private static JsonNode Explain(string image, string offset)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(Cli.Cli.Run(["explain", "--output=json", image, offset], stdout, stderr) == 0, stderr.ToString());
        return JsonNode.Parse(stdout.ToString())!;
    }

    /// <summary>The host offset qemu-img map gives for a guest offset.</summary>
    private static long MappedOffset(TempDir dir, string image, long guest)
    {
        foreach (JsonNode? e in JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", image))!.AsArray())
        {
            long start = (long)e!["start"]!;
            if (guest >= start && guest < start + (long)e["length"]! && e["offset"] is { } offset)
            {
                return (long)offset + (guest - start);
            }
        }

        return -1;
    }
}
