// Freed space goes back into use as in QEMU (iotest 250): clusters a session discards are taken
// again by its later writes instead of growing the file, and a shrink gives the file's freed tail
// back. The file ends where qemu-io's and qemu-img's end (within a tenth), and qemu-img check
// finds it clean.
using System.IO;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class SpaceReuseTests
{
    [OracleTheory]
    [InlineData("")]
    [InlineData("cluster_size=4k")]
    [InlineData("compat=0.10")]
    public void WritesAfterADiscard_TakeTheFreedClusters(string options)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        string[] session = ["-c", "write -P 1 0 32M", "-c", "discard 0 32M", "-c", "write -P 2 32M 32M"];
        foreach (string image in new[] { "theirs.qcow2", "mine.qcow2" })
        {
            Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", "qcow2", .. o, image, "64M"]);
        }

        Qemu.Ok("qemu-io", dir.Path, [.. session, "theirs.qcow2"]);
        var mine = QcowTool.Run(["io", .. session, dir.File("mine.qcow2")]);
        Assert.True(mine.Code == 0, mine.Stdout + mine.Stderr);

        AssertLikeTheirs(dir);
    }

    [OracleTheory]
    [InlineData("")]
    [InlineData("cluster_size=4k")]
    public void AWriteOfNewClusters_TakesThemInOneRun_LeavingSmallerHoles(string options)
    {
        // A one-cluster hole, then a write of three new clusters: QEMU puts them together past
        // the hole (which a later one-cluster write then fills), so both files map alike.
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        int cluster = options == "" ? 65536 : 4096;
        string[] session =
        [
            "-c", $"write -P 1 0 {4 * cluster}", "-c", $"discard {cluster} {cluster}", "-c", "flush",
            "-c", $"write -P 2 {8 * cluster} {3 * cluster}", "-c", $"write -P 3 {16 * cluster} {cluster}",
        ];
        foreach (string image in new[] { "theirs.qcow2", "mine.qcow2" })
        {
            Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", "qcow2", .. o, image, "64M"]);
        }

        Qemu.Ok("qemu-io", dir.Path, [.. session, "theirs.qcow2"]);
        var mine = QcowTool.Run(["io", .. session, dir.File("mine.qcow2")]);
        Assert.True(mine.Code == 0, mine.Stdout + mine.Stderr);

        Assert.Equal(Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "theirs.qcow2"), Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "mine.qcow2"));
        Assert.Equal(CheckTests.QemuFigures(dir, "theirs.qcow2"), CheckTests.QemuFigures(dir, "mine.qcow2"));
    }

    [OracleTheory]
    [InlineData("", "2M")]
    [InlineData("cluster_size=512,refcount_bits=64", "3M")]
    public void Shrink_GivesTheFreedTailBack(string options, string size)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        foreach (string image in new[] { "theirs.qcow2", "mine.qcow2" })
        {
            Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", "qcow2", .. o, image, "8M"]);
            Qemu.Io(dir.Path, image, "write -P 3 0 8M");
        }

        Qemu.Ok("qemu-img", dir.Path, "resize", "-q", "--shrink", "theirs.qcow2", size);
        var mine = QcowTool.Run("resize", "-q", "--shrink", dir.File("mine.qcow2"), size);
        Assert.True(mine.Code == 0, mine.Stderr);

        AssertLikeTheirs(dir);
    }

    private static void AssertLikeTheirs(TempDir dir)
    {
        long theirs = new FileInfo(dir.File("theirs.qcow2")).Length;
        long ours = new FileInfo(dir.File("mine.qcow2")).Length;
        Assert.True(ours <= theirs + theirs / 10, $"the file is {ours} bytes, qemu's {theirs}");
        Qemu.Ok("qemu-img", dir.Path, "check", "mine.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "compare", "mine.qcow2", "theirs.qcow2");
    }
}
