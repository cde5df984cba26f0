// Format probing as qemu-img probes: a file with the qcow magic and an unsupported version, or in
// another format QEMU reads, is refused by name and left as it was; it is never taken for raw.
using System;
using System.Buffers.Binary;
using System.IO;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class ProbingTests
{
    [OracleTheory]
    [InlineData(4u)]
    [InlineData(0u)]
    [InlineData(0xDEADBEEFu)]
    public void QcowMagicWithUnsupportedVersion_IsRefusedAndLeftUnchanged(uint version)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "v.qcow2", "64M");
        byte[] bytes = File.ReadAllBytes(dir.File("v.qcow2"));
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), version);
        File.WriteAllBytes(dir.File("v.qcow2"), bytes);

        foreach (string[] verb in new[] { new[] { "io", "-c", "write -P 0x55 0 512" }, ["info"], ["check"], ["convert", "-O", "raw"] })
        {
            string[] target = verb[0] == "convert" ? [dir.File("v.qcow2"), dir.File("out.raw")] : [dir.File("v.qcow2")];
            var mine = QcowTool.Run([.. verb, .. target]);

            Assert.Equal(1, mine.Code);
            Assert.Contains($"Unsupported qcow2 version {version}", mine.Stderr);
            Assert.Equal(bytes, File.ReadAllBytes(dir.File("v.qcow2")));
        }

        if (version == 4)
        {
            var theirs = Qemu.Run("qemu-img", dir.Path, "info", "v.qcow2");
            Assert.Equal(1, theirs.ExitCode);
            Assert.Contains("Unsupported qcow2 version 4", theirs.Stderr);
        }
    }

    [OracleTheory]
    [InlineData("vdi")]
    [InlineData("vmdk")]
    [InlineData("vpc")]
    [InlineData("vhdx")]
    [InlineData("qed")]
    [InlineData("parallels")]
    public void ImageInAnotherFormat_IsRefusedByNameAndLeftUnchanged(string format)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", format, "x.img", "1M");
        Assert.Contains($"file format: {format}", Qemu.Ok("qemu-img", dir.Path, "info", "x.img"));
        byte[] before = File.ReadAllBytes(dir.File("x.img"));

        foreach (string[] verb in new[] { new[] { "io", "-c", "write -P 0x55 0 512" }, ["info"], ["check"], ["resize", "x.img", "2M"] })
        {
            string[] args = verb[0] == "resize" ? ["resize", dir.File("x.img"), "2M"] : [.. verb, dir.File("x.img")];
            var mine = QcowTool.Run(args);

            Assert.Equal(1, mine.Code);
            Assert.Contains($"a {format} image, a format Qcow does not read", mine.Stderr);
            Assert.Equal(before, File.ReadAllBytes(dir.File("x.img")));
        }
    }

    [OracleFact]
    public void BackingFileInAnotherFormat_NotRecorded_IsRefusedByName()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("base.vdi"), new byte[1 << 20]);
        QcowImage.Create(dir.File("top.qcow2"), new QcowCreateOptions { Size = 1 << 20, BackingFile = "base.vdi" }).Dispose();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "vdi", "base.vdi", "1M");
        Qemu.Ok("qemu-io", dir.Path, "-f", "vdi", "-c", "write -P 7 0 64k", "base.vdi");

        var mine = QcowTool.Run("convert", "-O", "raw", dir.File("top.qcow2"), dir.File("out.raw"));

        Assert.Equal(1, mine.Code);
        Assert.Contains("a vdi image, a format Qcow does not read", mine.Stderr);
        Assert.Equal(7, Qemu.RawBytes(dir.Path, "top.qcow2")[0]);
    }

    [OracleFact]
    public void UnknownFormatName_IsRefusedAsQemuImgRefusesIt()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "x.qcow2", "1M");

        var theirs = Qemu.Run("qemu-img", dir.Path, "info", "-f", "bogus", "x.qcow2");
        var mine = QcowTool.Run("info", "-f", "bogus", dir.File("x.qcow2"));

        Assert.Equal(theirs.ExitCode, mine.Code);
        Assert.Contains("Unknown driver 'bogus'", theirs.Stderr);
        Assert.Contains("Unknown driver 'bogus'", mine.Stderr);
        Assert.DoesNotContain("Parameter", mine.Stderr);
    }
}
