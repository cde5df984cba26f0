// qcow info and qcow create against qemu-img: the same JSON (filename and actual-size aside).
using System.IO;
using System.Text.Json.Nodes;
using Qcow.Cli;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class InfoCommandTests
{
    private static JsonNode Without(string json)
    {
        JsonObject o = JsonNode.Parse(json)!.AsObject();
        o.Remove("filename");
        o.Remove("actual-size");
        o.Remove("full-backing-filename");
        return o;
    }

    [OracleTheory]
    [InlineData("qcow2", "")]
    [InlineData("qcow2", "compat=0.10")]
    [InlineData("qcow2", "cluster_size=4096,refcount_bits=1,lazy_refcounts=on")]
    [InlineData("qcow2", "compression_type=zstd")]
    [InlineData("qcow", "")]
    [InlineData("raw", "")]
    public void InfoJson_EqualsQemuImgs(string format, string options)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "x.img", "64M"]);
        var stdout = new StringWriter();

        int code = Cli.Cli.Run(["info", "--output=json", dir.File("x.img")], stdout, new StringWriter());

        Assert.Equal(0, code);
        string expected = Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", "x.img");
        Assert.True(JsonNode.DeepEquals(Without(expected), Without(stdout.ToString())), $"qemu-img: {expected}\nqcow: {stdout}");
    }

    [OracleFact]
    public void Info_ListsSnapshots_AndFollowsTheBackingChain_AsQemuImgPrintsThem()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "raw", "base.raw", "4M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2", "8M");
        Qemu.Io(dir.Path, "top.qcow2", "write -P 1 0 64k");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "first", "top.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "second one", "top.qcow2");

        string top = dir.File("top.qcow2");
        foreach (string[] args in new[] { new[] { top }, ["--output=json", top], ["--backing-chain", top], ["--backing-chain", "--output=json", top] })
        {
            string theirs = Qemu.Ok("qemu-img", dir.Path, ["info", .. args]);
            var stdout = new StringWriter();
            Assert.Equal(0, Cli.Cli.Run(["info", .. args], stdout, new StringWriter()));
            Assert.Equal(theirs, stdout.ToString());
        }
    }

    [OracleTheory]
    [InlineData("qcow2", "encrypt.format=luks")]
    [InlineData("qcow2", "encrypt.format=aes")]
    [InlineData("qcow", "encrypt.format=aes")]
    public void Info_OfEncryptedImages_PrintsWhatQemuImgPrints_AndReadsAreRefused(string format, string options)
    {
        using var dir = new TempDir();
        // LUKS times its key derivation on the CPU, which some machines cannot measure at once.
        for (int attempt = 0; ; attempt++)
        {
            var made = Qemu.Run("qemu-img", dir.Path, "create", "-q", "-f", format, "--object", "secret,id=s0,data=secret", "-o", $"{options},encrypt.key-secret=s0", "e.img", "4M");
            if (made.ExitCode == 0 || attempt == 4 || !made.Stderr.Contains("Unable to get accurate CPU usage"))
            {
                Assert.True(made.ExitCode == 0, made.Stderr);
                break;
            }
        }

        string image = dir.File("e.img");
        foreach (string[] args in new[] { new[] { "info", image }, ["info", "--output=json", image] })
        {
            string theirs = Qemu.Ok("qemu-img", dir.Path, args);
            var stdout = new StringWriter();
            Assert.Equal(0, Cli.Cli.Run(args, stdout, new StringWriter()));
            Assert.Equal(theirs, stdout.ToString());
        }

        using (QcowImage encrypted = QcowImage.Open(image, new QcowOpenOptions { ReadOnly = true }))
        {
            var refused = Assert.Throws<QcowFormatException>(() => encrypted.Read(0, new byte[512]));
            Assert.Equal(QcowFormatErrorKind.UnsupportedFeature, refused.Kind);
        }

        Assert.Throws<QcowFormatException>(() => QcowImage.Open(image).Dispose());
    }

    [OracleTheory]
    [InlineData("metadata", "8M", true)]
    [InlineData("metadata", "3G", false)]
    [InlineData("falloc", "8M", false)]
    [InlineData("full", "8M", false)]
    public void Create_WithPreallocation_MakesWhatQemuImgMakes(string mode, string size, bool byteIdentical)
    {
        // Past one refcount block QEMU allocates data a run at a time and its second block lands
        // after the run; Qcow's lands at the first cluster it must describe: the layouts differ
        // there (both clean, the same disk).
        bool sameLayout = size != "3G";
        CreateWithPreallocation(mode, size, byteIdentical, sameLayout);
    }

    private static void CreateWithPreallocation(string mode, string size, bool byteIdentical, bool sameLayout)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"preallocation={mode}", "theirs.qcow2", size);

        Assert.Equal(0, Cli.Cli.Run(["create", "-q", "-f", "qcow2", "-o", $"preallocation={mode}", dir.File("mine.qcow2"), size], new StringWriter(), new StringWriter()));

        Qemu.AssertClean(dir.Path, "mine.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "compare", "theirs.qcow2", "mine.qcow2");
        if (sameLayout)
        {
            Assert.Equal(
                Qemu.Ok("qemu-img", dir.Path, "check", "--output=json", "theirs.qcow2").Replace("theirs", "X"),
                Qemu.Ok("qemu-img", dir.Path, "check", "--output=json", "mine.qcow2").Replace("mine", "X"));
        }
        if (byteIdentical)
        {
            Assert.Equal(File.ReadAllBytes(dir.File("theirs.qcow2")), File.ReadAllBytes(dir.File("mine.qcow2")));
        }
    }

    [OracleTheory]
    [InlineData("qcow2", "compat=0.10,backing_file=b.qcow2,backing_fmt=qcow2")]
    [InlineData("qcow2", "extended_l2=on,compression_type=zstd,lazy_refcounts=on,refcount_bits=64")]
    [InlineData("qcow2", "preallocation=metadata,cluster_size=4k")]
    [InlineData("qcow", "")]
    [InlineData("raw", "")]
    public void Create_SaysWhatQemuImgSays(string format, string options)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "b.qcow2", "1M");
        string[] o = options == "" ? [] : ["-o", options];
        string theirs = Qemu.Ok("qemu-img", dir.Path, ["create", "-f", format, "-u", .. o, dir.File("x.img"), "5M"]);
        var stdout = new StringWriter();

        Assert.Equal(0, Cli.Cli.Run(["create", "-f", format, "-u", .. o, dir.File("y.img"), "5M"], stdout, new StringWriter()));

        Assert.Equal(theirs.Replace(dir.File("x.img"), "IMAGE"), stdout.ToString().Replace(dir.File("y.img"), "IMAGE"));
    }

    [OracleTheory]
    [InlineData("qcow2", "", "3G")]
    [InlineData("qcow2", "compat=0.10,cluster_size=512", "16M")]
    [InlineData("qcow2", "cluster_size=2M,refcount_bits=64,lazy_refcounts=on,compression_type=zstd", "3G")]
    [InlineData("qcow2", "cluster_size=4096,refcount_bits=1", "1T")]
    [InlineData("qcow", "", "3G")]
    [InlineData("qcow2", "extended_l2=on", "3G")]
    [InlineData("qcow2", "extended_l2=on,cluster_size=2M,refcount_bits=1", "100G")]
    [InlineData("qcow2", "data_file=data.raw", "3G")]
    [InlineData("qcow2", "data_file=data.raw,data_file_raw=on,cluster_size=4k", "100M")]
    [InlineData("qcow2", "preallocation=metadata,cluster_size=4k", "4M")]
    public void Create_WritesTheSameBytesAsQemuImg(string format, string options, string size)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "theirs.img", size]);

        int code = Cli.Cli.Run(["create", "-q", "-f", format, .. o, dir.File("mine.img"), size], new StringWriter(), new StringWriter());

        Assert.Equal(0, code);
        Assert.Equal(File.ReadAllBytes(dir.File("theirs.img")), File.ReadAllBytes(dir.File("mine.img")));
    }

    /// <summary>
    /// An L1 table too large for one refcount block: QEMU places the extra blocks after the L1
    /// in the order its allocator happens to produce; Qcow places them before it. Both are valid.
    /// </summary>
    [OracleTheory]
    [InlineData("compat=0.10,cluster_size=512", "3G")]
    [InlineData("cluster_size=512,refcount_bits=64", "100G")]
    [InlineData("cluster_size=2M", "2E")]
    public void Create_WithAnL1ThatNeedsSeveralRefcountBlocks_IsCleanForQemuImg(string options, string size)
    {
        using var dir = new TempDir();
        int code = Cli.Cli.Run(["create", "-q", "-f", "qcow2", "-o", options, dir.File("mine.qcow2"), size], new StringWriter(), new StringWriter());

        Assert.Equal(0, code);
        Qemu.AssertClean(dir.Path, "mine.qcow2");
        Qemu.Io(dir.Path, "mine.qcow2", "write -P 0x3c 1M 64k", "read -P 0x3c 1M 64k");
        Qemu.AssertClean(dir.Path, "mine.qcow2");
    }

    [OracleFact]
    public void Create_WithBackingFile_WritesTheSameBytesAsQemuImg()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "64M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "theirs.qcow2");

        int code = Cli.Cli.Run(["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir.File("mine.qcow2")], new StringWriter(), new StringWriter());

        Assert.Equal(0, code);
        Assert.Equal(File.ReadAllBytes(dir.File("theirs.qcow2")), File.ReadAllBytes(dir.File("mine.qcow2")));
    }

    [Fact]
    public void Errors_AreOneLine_WithoutAStackTrace()
    {
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(["info", "/nonexistent/x.qcow2"], new StringWriter(), stderr);
        Assert.Equal(1, code);
        Assert.StartsWith("qcow: ", stderr.ToString());
        Assert.Single(stderr.ToString().TrimEnd().Split('\n'));
    }
}
