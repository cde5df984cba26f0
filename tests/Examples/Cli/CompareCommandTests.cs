// qcow compare against qemu-img compare: the same verdicts, messages and exit codes for equal
// images, a differing byte, a byte only one image allocates, different sizes, strict mode, and
// an image that cannot be opened.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class CompareCommandTests
{
    [OracleFact]
    public void Compare_SaysWhatQemuImgCompareSays()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "4M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "b.qcow2", "4M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "big.qcow2", "8M");
        AssertSame(dir, "a.qcow2", "b.qcow2");

        Qemu.Io(dir.Path, "b.qcow2", "write -P 1 70000 10");
        AssertSame(dir, "a.qcow2", "b.qcow2");
        AssertSame(dir, "b.qcow2", "a.qcow2");

        Qemu.Io(dir.Path, "a.qcow2", "write -P 1 70000 10", "write -P 3 1M 4k");
        Qemu.Io(dir.Path, "b.qcow2", "write -P 3 1M 4k", "write -P 4 1M 1");
        AssertSame(dir, "a.qcow2", "b.qcow2");

        Qemu.Io(dir.Path, "big.qcow2", "write -P 1 70000 10", "write -P 3 1M 4k");
        AssertSame(dir, "a.qcow2", "big.qcow2");
        AssertSame(dir, "-s", "a.qcow2", "big.qcow2");
        Qemu.Io(dir.Path, "big.qcow2", "write -P 2 5M 10");
        AssertSame(dir, "a.qcow2", "big.qcow2");

        Qemu.Io(dir.Path, "a.qcow2", "write -z 2M 64k");
        Qemu.Ok("qemu-img", dir.Path, "convert", "-O", "raw", "a.qcow2", "a.raw");
        AssertSame(dir, "a.qcow2", "a.raw");
        AssertSame(dir, "-s", "a.qcow2", "a.raw");
        AssertSame(dir, "a.qcow2", "missing.qcow2");
    }

    [OracleFact]
    public void CompareWithProgress_DrawsTheFiguresQemuImgDraws()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "64M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "big.qcow2", "80M");
        Qemu.Io(dir.Path, "a.qcow2", "write -P 1 0 1M", "write -P 2 8M 3M", "write -z 20M 1M");
        Qemu.Ok("qemu-img", dir.Path, "convert", "-O", "qcow2", "a.qcow2", "b.qcow2");
        Qemu.Io(dir.Path, "big.qcow2", "write -P 1 0 1M", "write -P 2 8M 3M", "write -P 3 70M 64k");
        AssertSame(dir, "-p", "a.qcow2", "b.qcow2");
        AssertSame(dir, "-p", "-s", "a.qcow2", "big.qcow2");
        Qemu.Io(dir.Path, "b.qcow2", "write -P 9 9M 512");
        AssertSame(dir, "-p", "a.qcow2", "b.qcow2");
    }

    [OracleTheory]
    [InlineData("4M")]
    [InlineData("0")]
    public void AReadThatFails_IsReportedAsQemuImgReportsIt(string secondSize)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "4M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "b.qcow2", secondSize);
        Qemu.Io(dir.Path, "a.qcow2", "write -P 1 512 512");
        File.WriteAllText(dir.File("read.conf"), "[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\n");

        var theirs = Qemu.Run("qemu-img", dir.Path, "compare", "-f", "qcow2", "-F", "qcow2", "blkdebug:read.conf:a.qcow2", "b.qcow2");
        var (code, stdout, stderr) = QcowTool.RunIn(dir.Path, ["compare", "-f", "qcow2", "-F", "qcow2", "blkdebug:read.conf:a.qcow2", "b.qcow2"]);

        Assert.Equal(4, theirs.ExitCode);
        Assert.Equal(theirs.ExitCode, code);
        Assert.Equal(theirs.Stdout, stdout);
        Assert.Equal(theirs.Stderr.Replace("qemu-img:", "qcow:"), stderr);
    }

    private static void AssertSame(TempDir dir, params string[] args)
    {
        var theirs = Qemu.Run("qemu-img", dir.Path, ["compare", .. args]);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] paths = [.. System.Array.ConvertAll(args, a => a.StartsWith('-') ? a : dir.File(a))];
        int code = Cli.Cli.Run(["compare", .. paths], stdout, stderr);
        Assert.Equal(theirs.ExitCode, code);
        Assert.Equal(theirs.Stdout, stdout.ToString());
    }
}
