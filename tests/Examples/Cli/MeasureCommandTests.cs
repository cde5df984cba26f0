// qcow measure against qemu-img measure: the same figures (JSON and human) for sizes with every
// cluster size class, refcount width, extended L2 and preallocation, and for images QEMU filled.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class MeasureCommandTests
{
    [OracleTheory]
    [InlineData("--size", "1G", "-O", "qcow2")]
    [InlineData("--output=json", "--size", "1G", "-O", "qcow2", "-o", "cluster_size=4k,refcount_bits=1")]
    [InlineData("--output=json", "--size", "3T", "-O", "qcow2", "-o", "cluster_size=2M,refcount_bits=64")]
    [InlineData("--output=json", "--size", "100M", "-O", "qcow2", "-o", "cluster_size=512")]
    [InlineData("--output=json", "--size", "1G", "-O", "qcow2", "-o", "extended_l2=on")]
    [InlineData("--output=json", "--size", "1G", "-O", "qcow2", "-o", "preallocation=full")]
    [InlineData("--output=json", "--size", "1000001", "-O", "raw")]
    [InlineData("--size", "100T", "-O", "qcow2", "-o", "cluster_size=512")]
    [InlineData("--size", "1G", "-O", "qcow")]
    public void Measure_OfASize_EqualsQemuImgs(params string[] args)
    {
        using var dir = new TempDir();
        AssertSame(dir, args);
    }

    [OracleFact]
    public void Measure_OfImages_EqualsQemuImgs()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "raw", "r.raw", "4M");
        Qemu.Ok("qemu-io", dir.Path, "-f", "raw", "-c", "write -P 1 1M 64k", "r.raw");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "r.raw", "-F", "raw", "o.qcow2", "16M");
        Qemu.Io(dir.Path, "o.qcow2", "write -P 1 0 100k", "write -c -P 2 2M 64k", "write -z 3M 64k", "write -P 3 5M 4k");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=4096", "v2.qcow2", "16M");
        Qemu.Io(dir.Path, "v2.qcow2", "write -P 1 100k 100k");

        foreach (string image in new[] { "o.qcow2", "v2.qcow2" })
        {
            AssertSame(dir, "--output=json", dir.File(image));
            AssertSame(dir, "-O", "qcow2", dir.File(image));
            AssertSame(dir, "--output=json", "-O", "qcow2", "-o", "cluster_size=4k", dir.File(image));
            AssertSame(dir, "--output=json", "-O", "qcow2", "-o", "compat=0.10", dir.File(image));
            AssertSame(dir, "--output=json", "-O", "qcow2", "-o", "backing_file=r.raw", dir.File(image));
        }

        AssertSame(dir, "--output=json", "-O", "qcow2", "-f", "raw", dir.File("r.raw"));
    }

    private static void AssertSame(TempDir dir, params string[] args)
    {
        var theirs = Qemu.Run("qemu-img", dir.Path, ["measure", .. args]);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(["measure", .. args], stdout, stderr);
        Assert.Equal(theirs.ExitCode, code);
        Assert.Equal(theirs.Stdout, stdout.ToString());
        Assert.Equal(theirs.Stderr.Replace("qemu-img: ", "qcow: "), stderr.ToString());
    }
}
