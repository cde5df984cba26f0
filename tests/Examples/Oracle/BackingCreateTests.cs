// Creating an image over a backing file as qemu-img 7.2 does (iotest 114): the backing file is
// opened first (unless -u), so a missing one is refused and nothing is created; its format must be
// given; without a size the image takes the backing file's. qcow prints qemu-img's message (its
// own name in front) and exit code, and leaves a file exactly when qemu-img does. The library's
// Create keeps the same rules.
using System.IO;
using System.Text.Json;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class BackingCreateTests
{
    [OracleTheory]
    [InlineData("create -f qcow2 -b base.qcow2 NEW")]
    [InlineData("create -f qcow2 -b base.raw NEW 1M")]
    [InlineData("create -f qcow -b base.qcow2 NEW 1M")]
    [InlineData("create -f qcow2 -u -b base.qcow2 NEW 1M")]
    [InlineData("create -f qcow2 -u -b missing.qcow2 -F qcow2 NEW")]
    [InlineData("create -f qcow2 -b missing.qcow2 NEW 1M")]
    [InlineData("create -f qcow2 -b missing.qcow2 -F qcow2 NEW 1M")]
    [InlineData("create -f qcow2 -u -b missing.qcow2 -F qcow2 NEW 1M")]
    [InlineData("create -f qcow2 -b base.qcow2 -F qcow2 NEW")]
    [InlineData("convert -O qcow2 -B base.qcow2 SOURCE NEW")]
    [InlineData("convert -c -O qcow2 -B base.qcow2 SOURCE NEW")]
    public void BackingFileRules_AreQemuImgs(string command)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "3M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");

        string[] theirs = Words(dir, command, "theirs.img");
        var (code, _, stderr) = Qemu.Run("qemu-img", dir.Path, theirs);
        var result = QcowTool.Run(Words(dir, command, "mine.img"));

        Assert.Equal(code, result.Code);
        // qemu-img 7.2 ends the "Detected format" hint without a newline; qcow ends every line.
        Assert.Equal(stderr.Replace("theirs.img", "mine.img", System.StringComparison.Ordinal).Replace("qemu-img:", "qcow:").TrimEnd(), result.Stderr.TrimEnd());
        Assert.Equal(File.Exists(dir.File("theirs.img")), File.Exists(dir.File("mine.img")));
        if (code == 0)
        {
            Assert.Equal(VirtualSize(dir, "theirs.img"), VirtualSize(dir, "mine.img"));
        }
    }

    /// <summary>The command's words, the new image and the source named by absolute paths (backing names stay relative to the image).</summary>
    private static string[] Words(TempDir dir, string command, string image) =>
        command.Replace("NEW", dir.File(image)).Replace("SOURCE", dir.File("base.qcow2")).Split(' ');

    private static long VirtualSize(TempDir dir, string image)
    {
        using JsonDocument info = JsonDocument.Parse(Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", image));
        return info.RootElement.GetProperty("virtual-size").GetInt64();
    }

    [OracleFact]
    public void LibraryCreate_TakesTheBackingFilesSize_AndLeavesNothingWhenItFails()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "3M");

        using (var image = Qcow.QcowImage.Create(dir.File("over.qcow2"), new Qcow.QcowCreateOptions { BackingFile = "base.qcow2", BackingFormat = Qcow.QcowImageFormat.Qcow2 }))
        {
            Assert.Equal(3L << 20, image.Length);
        }

        var e = Assert.Throws<IOException>(() => Qcow.QcowImage.Create(dir.File("missing.qcow2"), new Qcow.QcowCreateOptions { BackingFile = "nowhere.qcow2", BackingFormat = Qcow.QcowImageFormat.Qcow2 }));
        Assert.Contains("Could not open backing image", e.Message);
        Assert.False(File.Exists(dir.File("missing.qcow2")));

        Assert.ThrowsAny<System.ArgumentException>(() => Qcow.QcowImage.Create(dir.File("bad.qcow2"), new Qcow.QcowCreateOptions { Size = 1 << 20, ClusterSize = 3000 }));
        Assert.False(File.Exists(dir.File("bad.qcow2")));
    }
}
