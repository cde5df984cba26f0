// qcow map against qemu-img map on images QEMU made and filled: the same text, JSON and human,
// through backing chains (qcow2 on qcow2 on a sparse raw file) and over every kind of cluster.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class MapCommandTests
{
    /// <summary>Data, a compressed cluster, zeros, a partial cluster at the end of the file, a discard.</summary>
    private static string[] Fill(string compressedCluster, bool zeroClusters) =>
    [
        "write -P 1 0 128k", "write -P 2 1M 64k", $"write -c -P 3 2M {compressedCluster}",
        .. zeroClusters ? (string[])["write -z 3M 64k", "discard 1M 64k"] : [],
        "write -P 4 5M 4k", "write -P 5 5M 4k", "write -P 6 8M 100k",
    ];

    [OracleTheory]
    [InlineData("qcow2", "", "64k")]
    [InlineData("qcow2", "compat=0.10,cluster_size=4096", "4k")]
    [InlineData("qcow2", "cluster_size=512,refcount_bits=1", "512")]
    [InlineData("qcow2", "cluster_size=2M,compression_type=zstd", "2M")]
    [InlineData("qcow", "", "4k")]
    public void Map_EqualsQemuImgMap_OnQemusImages(string format, string options, string clusterSize)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "m.img", "16M"]);
        Qemu.Ok("qemu-io", dir.Path, ["-f", format, .. Commands(Fill(clusterSize, format == "qcow2" && !options.Contains("compat=0.10"))), "m.img"]);

        AssertSameMap(dir, "--output=json", dir.File("m.img"));
        AssertSameMap(dir, "--output=json", "--start-offset=100k", "--max-length=6M", dir.File("m.img"));
        AssertSameMap(dir, "--output=human", dir.File("m.img"));
    }

    [OracleFact]
    public void Map_FollowsTheBackingChain_DownToASparseRawFile()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "raw", "base.raw", "4M");
        Qemu.Ok("qemu-io", dir.Path, "-f", "raw", "-c", "write -P 1 1M 64k", "base.raw");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2", "8M");
        Qemu.Io(dir.Path, "mid.qcow2", "write -P 2 0 64k", "write -z 2M 64k");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2", "12M");
        Qemu.Io(dir.Path, "top.qcow2", "write -P 3 32k 8k", "discard 1M 4k", "write -P 4 9M 4k");

        AssertSameMap(dir, "--output=json", dir.File("top.qcow2"));
        AssertSameMap(dir, "--output=human", dir.File("top.qcow2"));
        AssertSameMap(dir, "--output=json", "-f", "raw", dir.File("base.raw"));
    }

    private static string[] Commands(string[] commands)
    {
        var args = new System.Collections.Generic.List<string>();
        foreach (string c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }

        return args.ToArray();
    }

    private static void AssertSameMap(TempDir dir, params string[] args)
    {
        var theirs = Qemu.Run("qemu-img", dir.Path, ["map", .. args]);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(["map", .. args], stdout, stderr);
        Assert.Equal(theirs.ExitCode, code);
        Assert.Equal(theirs.Stdout, stdout.ToString());
        Assert.Equal(theirs.Stderr.Replace("qemu-img: ", "qcow: "), stderr.ToString());
    }
}
