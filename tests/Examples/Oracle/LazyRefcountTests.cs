// Lazy refcounts as QEMU keeps them: the first flush that writes tables sets the dirty bit;
// flushes then leave data clusters' refcounts in memory, so a crash leaves the image dirty with
// the refcounts qemu-img check finds stale (and a read-write open repairs); closing writes them
// and clears the bit. Without the feature, every flush writes them.
using System;
using System.IO;
using System.Text.Json;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class LazyRefcountTests
{
    [OracleTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void AFlushedButUnclosedImage_IsDirtyWithStaleRefcounts_OnlyUnderLazyRefcounts(bool lazy)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"compat=1.1,lazy_refcounts={(lazy ? "on" : "off")}", "image", "128M");
        using (QcowImage image = QcowImage.Open(dir.File("image"), new QcowOpenOptions { WriteThrough = true }))
        {
            image.Write(0, new byte[512]);

            // The power is cut here: the file holds what the write-through flush made durable.
            File.Copy(dir.File("image"), dir.File("cut"));
        }

        var (code, stdout, _) = Qemu.Run("qemu-img", dir.Path, "check", "--output=json", "cut");
        using (JsonDocument json = JsonDocument.Parse(stdout))
        {
            Assert.Equal(lazy, json.RootElement.TryGetProperty("corruptions", out _));
            Assert.Equal(lazy ? 2 : 0, code);
        }

        Assert.Equal(lazy, DirtyBit(dir.File("cut")));
        Assert.False(DirtyBit(dir.File("image")));
        Qemu.AssertClean(dir.Path, "image");

        // A read-write open of the cut image repairs it first, as QEMU's does.
        using (QcowImage repaired = QcowImage.Open(dir.File("cut")))
        {
            repaired.Write(4096, new byte[512]);
        }

        Assert.False(DirtyBit(dir.File("cut")));
        Qemu.AssertClean(dir.Path, "cut");
    }

    private static bool DirtyBit(string path)
    {
        byte[] header = new byte[80];
        using FileStream f = File.OpenRead(path);
        f.ReadExactly(header);
        return (header[79] & 1) != 0;
    }
}
