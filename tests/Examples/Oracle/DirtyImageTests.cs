// A dirty image (lazy refcounts, left by a crash) is repaired on a read-write open, as QEMU
// repairs it; a read-only open just reads it.
using System;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class DirtyImageTests
{
    private static void MakeDirty(TempDir dir, string name, string options)
    {
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"lazy_refcounts=on,{options}", name, "64M");
        // qemu-io's abort leaves the image as a crash would: dirty bit set, refcounts stale.
        Qemu.Run("qemu-io", dir.Path, "-c", "write -P 0x5a 0 1M", "-c", "write -P 0x5b 5M 64k", "-c", "abort", name);
        Assert.Contains("\"dirty-flag\": true", Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", name));
    }

    [OracleTheory]
    [InlineData("cluster_size=65536")]
    [InlineData("cluster_size=512,refcount_bits=1")]
    [InlineData("cluster_size=4096,refcount_bits=64")]
    public void OpenReadWrite_RebuildsRefcounts_AndClearsTheDirtyBit(string options)
    {
        using var dir = new TempDir();
        MakeDirty(dir, "d.qcow2", options);

        using (QcowImage image = QcowImage.Open(dir.File("d.qcow2")))
        {
            Assert.False(image.Info.Dirty);
            image.Write(2 << 20, new byte[] { 1, 2, 3 });
        }

        Assert.Contains("\"dirty-flag\": false", Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", "d.qcow2"));
        Qemu.AssertClean(dir.Path, "d.qcow2");
        Qemu.Io(dir.Path, "d.qcow2", "read -P 0x5a 0 1M", "read -P 0x5b 5M 64k");
    }

    [OracleTheory]
    [InlineData("cluster_size=65536")]
    [InlineData("cluster_size=4096,refcount_bits=64")]
    public void OpenReadWrite_RepairsADirtyImage_AsQemuDoes(string options)
    {
        using var dir = new TempDir();
        MakeDirty(dir, "d.qcow2", options);
        System.IO.File.Copy(dir.File("d.qcow2"), dir.File("q.qcow2"));

        // qemu-io's open repairs it (check -r all); a flush writes nothing else.
        Qemu.Io(dir.Path, "q.qcow2", "flush");
        using (QcowImage image = QcowImage.Open(dir.File("d.qcow2")))
        {
            image.Flush();
        }

        byte[] qemus = System.IO.File.ReadAllBytes(dir.File("q.qcow2"));
        byte[] ours = System.IO.File.ReadAllBytes(dir.File("d.qcow2"));
        Assert.Equal(qemus.Length, ours.Length);
        int cluster = options.Contains("4096") ? 4096 : 65536;
        for (int at = 0; at < qemus.Length; at += cluster)
        {
            // A cluster QEMU freed it also discarded: it reads as zeros there.
            System.ReadOnlySpan<byte> theirs = qemus.AsSpan(at, System.Math.Min(cluster, qemus.Length - at));
            Assert.True(theirs.SequenceEqual(ours.AsSpan(at, theirs.Length)) || !theirs.ContainsAnyExcept((byte)0), $"host cluster at 0x{at:x} differs from QEMU's repair");
        }
    }

    [OracleFact]
    public void OpenReadOnly_ReadsADirtyImage_WithoutChangingIt()
    {
        using var dir = new TempDir();
        MakeDirty(dir, "d.qcow2", "cluster_size=65536");
        byte[] before = System.IO.File.ReadAllBytes(dir.File("d.qcow2"));

        using (QcowImage image = QcowImage.Open(dir.File("d.qcow2"), new QcowOpenOptions { ReadOnly = true }))
        {
            Assert.True(image.Info.Dirty);
            byte[] buffer = new byte[4];
            image.Read(5 << 20, buffer);
            Assert.Equal(new byte[] { 0x5b, 0x5b, 0x5b, 0x5b }, buffer);
        }

        Assert.Equal(before, System.IO.File.ReadAllBytes(dir.File("d.qcow2")));
    }
}
