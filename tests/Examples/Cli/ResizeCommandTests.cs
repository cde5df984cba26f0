// qcow resize against qemu-img resize: growing (in the L1 table's room and past it, with and
// without snapshots), shrinking with --shrink and refusing without it, relative sizes, raw files;
// afterwards qemu-img finds the image clean, reading and describing as qemu-img's does.
using System.IO;
using System.Text.Json.Nodes;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class ResizeCommandTests
{
    [OracleTheory]
    [InlineData("qcow2", "", false, "+1G")]
    [InlineData("qcow2", "", false, "8M")]
    [InlineData("qcow2", "", false, "--shrink", "8M")]
    [InlineData("qcow2", "", false, "--shrink", "-12M")]
    [InlineData("qcow2", "cluster_size=512", false, "10M")]
    [InlineData("qcow2", "cluster_size=4k", false, "5G")]
    [InlineData("qcow2", "", true, "--shrink", "4M")]
    [InlineData("qcow2", "cluster_size=512", true, "+100M")]
    [InlineData("qcow2", "compat=0.10", false, "+3T")]
    [InlineData("raw", "", false, "+1M")]
    [InlineData("raw", "", false, "--shrink", "1M")]
    [InlineData("qcow", "", false, "+1M")]
    [InlineData("qcow2", "", false, "4E")]
    [InlineData("qcow2", "", false, "--preallocation=metadata", "+8M")]
    [InlineData("qcow2", "cluster_size=4k", false, "--preallocation=falloc", "+1M")]
    [InlineData("qcow2", "", false, "--preallocation=full", "+8M")]
    [InlineData("qcow2", "", false, "4P")]
    public void Resize_DoesWhatQemuImgResizeDoes(string format, string options, bool snapshot, params string[] args)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "theirs.img", "16M"]);
        Qemu.Ok("qemu-io", dir.Path, "-f", format, "-c", "write -P 1 0 1M", "-c", "write -P 2 15M 64k", "theirs.img");
        if (snapshot)
        {
            Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "s", "theirs.img");
        }

        File.Copy(dir.File("theirs.img"), dir.File("mine.img"));
        var theirs = Qemu.Run("qemu-img", dir.Path, ["resize", "-f", format, "theirs.img", .. args]);
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        int code = Cli.Cli.Run(["resize", "-f", format, dir.File("mine.img"), .. args], stdout, stderr);

        Assert.Equal(theirs.ExitCode, code);
        Assert.Equal(theirs.Stdout, stdout.ToString());
        Assert.Equal(theirs.Stderr.Replace("qemu-img: ", "qcow: "), stderr.ToString());
        if (format == "qcow2")
        {
            Qemu.AssertClean(dir.Path, "mine.img");
        }

        // Strict for images; raw files differ in holes only because File.Copy does not keep them.
        Qemu.Ok("qemu-img", dir.Path, ["compare", .. format == "raw" ? [] : (string[])["-s"], "-f", format, "-F", format, "theirs.img", "mine.img"]);
        Assert.Equal(Size(dir, format, "theirs.img"), Size(dir, format, "mine.img"));
    }

    [OracleTheory]
    [InlineData("full")]
    [InlineData("metadata")]
    public void Preallocating_TheNewArea_LeavesTheOldClustersAlone(string mode)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "theirs.qcow2", "1000000");
        Qemu.Io(dir.Path, "theirs.qcow2", "write -P 1 0 900k", "write -z 960k 8k", "write -P 2 970k 4k");
        File.Copy(dir.File("theirs.qcow2"), dir.File("mine.qcow2"));
        Qemu.Ok("qemu-img", dir.Path, "resize", $"--preallocation={mode}", "theirs.qcow2", "3M");

        Assert.Equal(0, Cli.Cli.Run(["resize", $"--preallocation={mode}", dir.File("mine.qcow2"), "3M"], new StringWriter(), new StringWriter()));

        Qemu.AssertClean(dir.Path, "mine.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "compare", "theirs.qcow2", "mine.qcow2");
        Qemu.Io(dir.Path, "mine.qcow2", "read -P 1 0 900k", "read -P 2 970k 4k", "read -P 0 974k 2148352");
    }

    [OracleFact]
    public void Growing_PastTheOldEnd_ReadsZeros_NotTheLongerBackingFile()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "16M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 9 0 16M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "theirs.qcow2", "8M");
        File.Copy(dir.File("theirs.qcow2"), dir.File("mine.qcow2"));
        Qemu.Ok("qemu-img", dir.Path, "resize", "theirs.qcow2", "12M");

        Assert.Equal(0, Cli.Cli.Run(["resize", dir.File("mine.qcow2"), "12M"], new StringWriter(), new StringWriter()));

        Qemu.AssertClean(dir.Path, "mine.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "compare", "theirs.qcow2", "mine.qcow2");
        Qemu.Io(dir.Path, "mine.qcow2", "read -P 0 8M 4M", "read -P 9 0 8M");
    }

    private static long Size(TempDir dir, string format, string image) =>
        (long)JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", "-f", format, image))!["virtual-size"]!;
}
