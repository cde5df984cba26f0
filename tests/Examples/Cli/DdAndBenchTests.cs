// qcow dd against qemu-img dd (the same bytes, size and allocation for bs, count and skip), and
// qcow bench: qemu-img bench's announcement, its requests really made, a clean image afterwards.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class DdAndBenchTests
{
    [OracleTheory]
    [InlineData("raw", "bs=64k", "count=20", "skip=2")]
    [InlineData("qcow2", "bs=1M", "skip=1")]
    [InlineData("raw", "bs=1000", "count=3")]
    [InlineData("raw", "bs=1M", "skip=100")]
    [InlineData("qcow2", "bs=4k", "count=300")]
    [InlineData("raw", "bs=3M", "count=2", "skip=1")]
    public void Dd_CopiesWhatQemuImgDdCopies(string format, params string[] operands)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "in.qcow2", "8M");
        Qemu.Io(dir.Path, "in.qcow2", "write -P 1 0 100k", "write -P 2 1M 64k", "write -P 3 5M 4k");
        Qemu.Run("qemu-img", dir.Path, ["dd", "-O", format, .. operands, "if=in.qcow2", "of=theirs.img"]);

        int code = Cli.Cli.Run(["dd", "-O", format, .. operands, $"if={dir.File("in.qcow2")}", $"of={dir.File("mine.img")}"], new StringWriter(), new StringWriter());

        Assert.Equal(0, code);
        Qemu.Ok("qemu-img", dir.Path, "compare", "-s", "-f", format, "-F", format, "theirs.img", "mine.img");
        Assert.Equal(
            Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "-f", format, "theirs.img"),
            Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "-f", format, "mine.img"));
    }

    [OracleFact]
    public void Bench_AnnouncesAsQemuImgDoes_AndItsWritesLeaveACleanImage()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "b.qcow2", "8M");
        string[] args = ["-c", "2000", "-w", "-s", "64k", "-S", "64k", "-d", "4", "--pattern=7", "-o", "1M", "--flush-interval=100"];
        string theirs = Qemu.Ok("qemu-img", dir.Path, ["bench", .. args, "b.qcow2"]);
        var stdout = new StringWriter();

        Assert.Equal(0, Cli.Cli.Run(["bench", .. args, dir.File("b.qcow2")], stdout, new StringWriter()));

        string[] mine = stdout.ToString().Split('\n');
        Assert.Equal(theirs.Split('\n')[0], mine[0]);
        Assert.Matches(@"^Run completed in [0-9]+\.[0-9]{3} seconds\.$", mine[1]);
        Assert.Matches(@"^[0-9]+ requests per second$", mine[2]);
        Qemu.AssertClean(dir.Path, "b.qcow2");
        Qemu.Io(dir.Path, "b.qcow2", "read -P 7 1M 7M");
    }
}
