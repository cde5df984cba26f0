// qcow convert's options against qemu-img convert's: several sources, -S, -n (with and without
// --target-is-zero), -B; the targets read the same and map the same as qemu-img's.
using System.IO;
using System.Linq;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class ConvertCommandTests
{
    [OracleTheory]
    [InlineData("-O", "qcow2")]
    [InlineData("-O", "qcow2", "-S", "0")]
    [InlineData("-O", "qcow2", "-S", "64k", "-m", "4", "-W")]
    [InlineData("-O", "raw")]
    [InlineData("-O", "qcow2", "-o", "cluster_size=4k,compat=0.10")]
    public void Convert_OfSeveralSources_WritesWhatQemuImgWrites(params string[] options)
    {
        using var dir = new TempDir();
        MakeSources(dir);

        Convert(dir, [.. options, "a.qcow2", "b.raw", "theirs.img"], [.. options, "a.qcow2", "b.raw", "mine.img"]);

        string format = options[1];
        Qemu.Ok("qemu-img", dir.Path, "compare", "-f", format, "-F", format, "theirs.img", "mine.img");
        if (!options.Contains("-W"))
        {
            // Out-of-order writes (-W) make qemu-img's layout depend on timing.
            Assert.Equal(Map(dir, format, "theirs.img"), Map(dir, format, "mine.img"));
        }
    }

    [OracleTheory]
    [InlineData("qcow2", false)]
    [InlineData("qcow2", true)]
    [InlineData("raw", false)]
    public void Convert_IntoAnExistingTarget_OverwritesIt(string format, bool targetIsZero)
    {
        using var dir = new TempDir();
        MakeSources(dir);
        foreach (string name in new[] { "theirs.img", "mine.img" })
        {
            Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", format, name, "12M");
            if (!targetIsZero)
            {
                Qemu.Ok("qemu-io", dir.Path, "-f", format, "-c", "write -P 0xee 0 12M", name);
            }
        }

        string[] flags = targetIsZero ? ["-n", "--target-is-zero"] : ["-n"];
        Convert(dir, [.. flags, "-O", format, "a.qcow2", "b.raw", "theirs.img"], [.. flags, "-O", format, "a.qcow2", "b.raw", "mine.img"]);

        Qemu.Ok("qemu-img", dir.Path, "compare", "-f", format, "-F", format, "theirs.img", "mine.img");
    }

    [OracleTheory]
    [InlineData]
    [InlineData("-c")]
    [InlineData("-c", "-S", "0")]
    public void Convert_WithB_LeavesTheBackingFilesDataToTheTargetsBackingFile(params string[] options)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "8M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 1 0 4M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        Qemu.Io(dir.Path, "top.qcow2", "write -P 2 1M 64k", "write -z 2M 64k", "write -P 3 3M 1k", "write -P 0 6M 64k");

        Convert(dir, ["-O", "qcow2", .. options, "-B", "base.qcow2", "-F", "qcow2", "top.qcow2", "theirs.qcow2"], ["-O", "qcow2", .. options, "-B", "base.qcow2", "-F", "qcow2", "top.qcow2", "mine.qcow2"]);

        Qemu.Ok("qemu-img", dir.Path, "compare", "top.qcow2", "mine.qcow2");
        Assert.Equal(Map(dir, "qcow2", "theirs.qcow2"), Map(dir, "qcow2", "mine.qcow2"));
    }

    private static void MakeSources(TempDir dir)
    {
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "8M");
        Qemu.Io(dir.Path, "a.qcow2", "write -P 1 0 100k", "write -c -P 2 1M 64k", "write -z 2M 64k", "write -P 0 3M 64k", "write -P 3 5M 4k");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "raw", "b.raw", "4M");
        Qemu.Ok("qemu-io", dir.Path, "-f", "raw", "-c", "write -P 4 1M 8k", "b.raw");
    }

    [OracleTheory]
    [InlineData("-O", "qcow2")]
    [InlineData("-O", "qcow2", "-S", "0")]
    [InlineData("-O", "raw")]
    public void ConvertWithProgress_DrawsTheFiguresQemuImgDraws(params string[] options)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "64M");
        Qemu.Io(dir.Path, "a.qcow2", "write -P 1 0 1M", "write -P 2 8M 3M", "write -z 20M 1M", "write -P 3 30M 5M");
        string theirs = Qemu.Ok("qemu-img", dir.Path, ["convert", "-p", .. options, "a.qcow2", "theirs.img"]);
        var stdout = new StringWriter();
        int code = Cli.Cli.Run(["convert", "-p", .. options, dir.File("a.qcow2"), dir.File("mine.img")], stdout, new StringWriter());
        Assert.Equal(0, code);
        Assert.Equal(theirs, stdout.ToString());
    }

    private static void Convert(TempDir dir, string[] theirs, string[] mine)
    {
        Qemu.Ok("qemu-img", dir.Path, ["convert", .. theirs]);
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(["convert", .. System.Array.ConvertAll(mine, a => a.EndsWith(".img") || a.EndsWith(".qcow2") || a.EndsWith(".raw") ? dir.File(a) : a)], new StringWriter(), stderr);
        Assert.True(code == 0, stderr.ToString());
    }

    private static string Map(TempDir dir, string format, string image) =>
        Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "-f", format, image);
}
