// qcow amend against qemu-img amend: compat and lazy_refcounts changes write the same bytes;
// refcount width changes leave an image qemu-img finds clean, with the same data and the same
// info; what qemu-img refuses, qcow refuses in the same words.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class AmendCommandTests
{
    [OracleTheory]
    [InlineData("compat=1.1", "compat=0.10")]
    [InlineData("compat=0.10", "")]
    [InlineData("lazy_refcounts=on", "")]
    [InlineData("lazy_refcounts=off", "lazy_refcounts=on")]
    [InlineData("compat=1.1,lazy_refcounts=on", "compat=0.10")]
    public void Amend_WritesTheBytesQemuImgAmendWrites(string amend, string create)
    {
        using var dir = Prepare(create);

        Assert.Equal(Qemu.Run("qemu-img", dir.Path, "amend", "-o", amend, "theirs.qcow2").ExitCode, Amend(dir, amend).Code);

        Assert.Equal(File.ReadAllBytes(dir.File("theirs.qcow2")), File.ReadAllBytes(dir.File("mine.qcow2")));
    }

    [OracleTheory]
    [InlineData("refcount_bits=1", "")]
    [InlineData("refcount_bits=64", "cluster_size=4k")]
    [InlineData("refcount_bits=8", "refcount_bits=2")]
    public void Amend_OfTheRefcountWidth_LeavesACleanImageWithTheSameData(string amend, string create)
    {
        using var dir = Prepare(create);
        Qemu.Ok("qemu-img", dir.Path, "amend", "-o", amend, "theirs.qcow2");

        Assert.Equal(0, Amend(dir, amend).Code);

        Qemu.AssertClean(dir.Path, "mine.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "compare", "theirs.qcow2", "mine.qcow2");
        Assert.Equal(FormatSpecific(dir, "theirs.qcow2"), FormatSpecific(dir, "mine.qcow2"));
    }

    [OracleTheory]
    [InlineData("compat=0.10,refcount_bits=8")]
    [InlineData("compat=0.10,lazy_refcounts=on")]
    [InlineData("cluster_size=4k")]
    [InlineData("foo=1")]
    public void Amend_RefusesWhatQemuImgRefuses(string amend)
    {
        using var dir = Prepare("");
        var theirs = Qemu.Run("qemu-img", dir.Path, "amend", "-o", amend, "theirs.qcow2");

        var mine = Amend(dir, amend);

        Assert.Equal(1, theirs.ExitCode);
        Assert.Equal(1, mine.Code);
        Assert.StartsWith(theirs.Stderr.Split('\n')[0].Replace("qemu-img: ", "qcow: ").Split(',')[0], mine.Stderr);
    }

    private static TempDir Prepare(string create)
    {
        var dir = new TempDir();
        string[] o = create == "" ? [] : ["-o", create];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", "qcow2", .. o, "theirs.qcow2", "16M"]);
        Qemu.Io(dir.Path, "theirs.qcow2", "write -P 1 0 200k", "write -P 2 5M 64k");
        File.Copy(dir.File("theirs.qcow2"), dir.File("mine.qcow2"));
        return dir;
    }

    private static (int Code, string Stderr) Amend(TempDir dir, string options)
    {
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(["amend", "-o", options, dir.File("mine.qcow2")], new StringWriter(), stderr);
        return (code, stderr.ToString());
    }

    private static string FormatSpecific(TempDir dir, string image)
    {
        string info = Qemu.Ok("qemu-img", dir.Path, "info", image);
        return info[info.IndexOf("Format specific", System.StringComparison.Ordinal)..];
    }
}
