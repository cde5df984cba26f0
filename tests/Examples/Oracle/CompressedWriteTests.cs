// Compressed clusters Qcow writes (qcow io write -c, qcow convert -c), read by QEMU: clean for
// qemu-img check, mapped as compressed, reading back as written, for every cluster size class,
// both compression types, qcow2 v2 and v3 and qcow v1; overwritten and discarded cleanly.
using System;
using System.IO;
using System.Text.Json.Nodes;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class CompressedWriteTests
{
    [OracleTheory]
    [InlineData("qcow2", "cluster_size=512", 512)]
    [InlineData("qcow2", "cluster_size=4k,compat=0.10", 4096)]
    [InlineData("qcow2", "cluster_size=64k", 65536)]
    [InlineData("qcow2", "cluster_size=2M,compression_type=zstd", 2 << 20)]
    [InlineData("qcow2", "cluster_size=64k,compression_type=zstd,refcount_bits=2", 65536)]
    [InlineData("qcow", "", 4096)]
    public void CompressedWrites_ReadBackInQemu_AndCheckClean(string format, string options, int clusterSize)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "c.img", "64M"]);
        string c1 = $"{clusterSize}";
        string c4 = $"{4 * clusterSize}";
        Io(dir, format, $"write -c -P 0x11 0 {c4}", $"write -c -P 0x22 {8 * clusterSize} {c1}", $"write -c -P 0x33 {16 * clusterSize} {c1}");

        if (format == "qcow2")
        {
            Qemu.AssertClean(dir.Path, "c.img");
            JsonNode check = JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "check", "--output=json", "c.img"))!;
            Assert.Equal(6, (long)check["compressed-clusters"]!);
        }

        Qemu.Ok("qemu-io", dir.Path, "-f", format, "-r", "-c", $"read -P 0x11 0 {c4}", "-c", $"read -P 0x22 {8 * clusterSize} {c1}", "-c", $"read -P 0x33 {16 * clusterSize} {c1}", "-c", $"read -P 0 {c4} {c4}", "c.img");
        foreach (JsonNode? e in JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "-f", format, "c.img"))!.AsArray())
        {
            Assert.False((bool)e!["data"]! && e["offset"] is not null, "a compressed cluster is mapped to an offset");
        }

        if (format == "qcow2")
        {
            // Overwriting and discarding streams that share host clusters leave refcounts right.
            Io(dir, format, $"write -P 0x44 {clusterSize} {clusterSize / 2}", $"discard {2 * clusterSize} {c1}", $"write -P 0x55 {8 * clusterSize} {c1}");
            Qemu.AssertClean(dir.Path, "c.img");
            Qemu.Ok("qemu-io", dir.Path, "-r", "-c", $"read -P 0x11 0 {c1}", "-c", $"read -P 0x44 {clusterSize} {clusterSize / 2}", "-c", $"read -P 0x55 {8 * clusterSize} {c1}", "c.img");
        }
    }

    [OracleTheory]
    [InlineData("qcow2", "")]
    [InlineData("qcow2", "compression_type=zstd,cluster_size=4k")]
    [InlineData("qcow", "")]
    public void ConvertCompressed_MakesTheSameDisk_CleanForQemu(string format, string options)
    {
        using var dir = new TempDir();
        byte[] raw = new byte[3_000_123];
        new Random(5).NextBytes(raw.AsSpan(0, 700_000));
        for (int i = 1_000_000; i < 2_500_000; i++)
        {
            raw[i] = (byte)(i / 1000 % 7);
        }

        File.WriteAllBytes(dir.File("in.raw"), raw);
        string[] o = options == "" ? [] : ["-o", options];
        var stderr = new StringWriter();

        int code = Cli.Cli.Run(["convert", "-c", "-f", "raw", "-O", format, .. o, dir.File("in.raw"), dir.File("out.img")], new StringWriter(), stderr);

        Assert.True(code == 0, stderr.ToString());
        Qemu.Ok("qemu-img", dir.Path, "compare", "-f", "raw", "-F", format, "in.raw", "out.img");
        if (format == "qcow2")
        {
            Qemu.AssertClean(dir.Path, "out.img");
        }
    }

    [Fact]
    public void CompressedWrite_OverAnAllocatedCluster_IsRefused()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20 });
        image.Write(0, new byte[512]);
        image.Dispose();

        var stdout = new StringWriter();
        Assert.Equal(1, Cli.Cli.Run(["io", "-c", "write -c 0 64k", dir.File("a.qcow2")], stdout, new StringWriter()));
        // As qemu-io says it: the driver fails the request with EIO.
        Assert.Equal(Qemu.Run("qemu-io", dir.Path, "-c", "write -c 0 64k", "a.qcow2").Stdout, stdout.ToString());
        Qemu.AssertClean(dir.Path, "a.qcow2");
    }

    private static void Io(TempDir dir, string format, params string[] commands)
    {
        var args = new System.Collections.Generic.List<string> { "-f", format };
        foreach (string c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(Cli.Cli.Run(["io", .. args, dir.File("c.img")], stdout, stderr) == 0, stdout.ToString() + stderr);
    }
}
