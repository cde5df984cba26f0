// Overlap protection: an image edited so that a guest cluster maps onto live metadata. A write
// there is refused by Qcow as QEMU refuses it (the same words, the image marked corrupt), and
// the metadata it would have overwritten is left as it was.
using System;
using System.Buffers.Binary;
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.Reliability;

public sealed class OverlapTests
{
    private const ulong Copied = 1UL << 63;
    private const long CorruptBit = 2;

    public enum Target
    {
        RefcountBlock,
        RefcountTable,
        ActiveL1,
        ActiveL2,
        InactiveL1,
    }

    [OracleTheory]
    [InlineData(Target.RefcountBlock, "refcount block")]
    [InlineData(Target.RefcountTable, "refcount table")]
    [InlineData(Target.ActiveL1, "active L1 table")]
    [InlineData(Target.ActiveL2, "active L2 table")]
    [InlineData(Target.InactiveL1, "inactive L1 table")]
    public void WriteMappedOntoMetadata_IsRefused_AsQemuRefusesIt(Target target, string qemuName)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "16M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 1 0 64k");
        if (target == Target.InactiveL1)
        {
            Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "s", "base.qcow2");
        }

        long victim = MapGuestZeroOnto(dir.File("base.qcow2"), target);
        File.Copy(dir.File("base.qcow2"), dir.File("qemu.qcow2"));
        File.Copy(dir.File("base.qcow2"), dir.File("qcow.qcow2"));
        byte[] before = ClusterAt(dir.File("base.qcow2"), victim);

        var qemu = Qemu.Run("qemu-io", dir.Path, "-c", "write -P 9 0 4k", "qemu.qcow2");
        Assert.Contains($"Preventing invalid write on metadata (overlaps with {qemuName})", qemu.Stderr + qemu.Stdout);

        using (QcowImage image = QcowImage.Open(dir.File("qcow.qcow2")))
        {
            var refused = Assert.Throws<QcowFormatException>(() => image.Write(0, new byte[4096]));
            Assert.Equal(QcowFormatErrorKind.OverlapsMetadata, refused.Kind);
            Assert.Contains($"overlaps with {qemuName}", refused.Message);
            Assert.Equal(victim, refused.Offset);
            Assert.Throws<QcowFormatException>(() => image.Write(1 << 20, new byte[512]));
        }

        Assert.Equal(before, ClusterAt(dir.File("qcow.qcow2"), victim));
        Assert.Equal(CorruptBit, IncompatibleFeatures(dir.File("qcow.qcow2")) & CorruptBit);
        Assert.Equal(IncompatibleFeatures(dir.File("qemu.qcow2")), IncompatibleFeatures(dir.File("qcow.qcow2")));
        Assert.Throws<QcowFormatException>(() => QcowImage.Open(dir.File("qcow.qcow2")).Dispose());
    }

    [OracleFact]
    public void AfterARefusedWrite_RepairAll_ClearsTheCorruptBit_AsQemuDoes()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "r.qcow2", "16M");
        Qemu.Io(dir.Path, "r.qcow2", "write -P 1 0 64k");
        MapGuestZeroOnto(dir.File("r.qcow2"), Target.RefcountBlock);
        using (QcowImage image = QcowImage.Open(dir.File("r.qcow2")))
        {
            Assert.Throws<QcowFormatException>(() => image.Write(0, new byte[4096]));
        }

        using (QcowImage repaired = QcowImage.Open(dir.File("r.qcow2"), new QcowOpenOptions { ForceCorrupt = true }))
        {
            repaired.Check(QcowCheckMode.RepairAll);
        }

        Qemu.AssertClean(dir.Path, "r.qcow2");
        Assert.Equal(0, IncompatibleFeatures(dir.File("r.qcow2")) & CorruptBit);
        using QcowImage writable = QcowImage.Open(dir.File("r.qcow2"));
        writable.Write(1 << 20, new byte[4096]);
    }

    [OracleFact]
    public void InAVersion2Image_ARefusedWrite_LeavesTheHeaderAlone()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "base.qcow2", "16M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.qcow2", "-F", "qcow2", "v2.qcow2");
        Qemu.Io(dir.Path, "v2.qcow2", "write -P 1 0 64k");
        MapGuestZeroOnto(dir.File("v2.qcow2"), Target.ActiveL1);
        byte[] header = File.ReadAllBytes(dir.File("v2.qcow2"))[..4096];
        using (QcowImage image = QcowImage.Open(dir.File("v2.qcow2")))
        {
            Assert.Throws<QcowFormatException>(() => image.Write(0, new byte[4096]));
        }

        Assert.Equal(header, File.ReadAllBytes(dir.File("v2.qcow2"))[..4096]);
        Qemu.Ok("qemu-img", dir.Path, "info", "v2.qcow2");
    }

    [OracleFact]
    public void ClusterWhoseRefcountWasZeroed_IsNotOverwritten_WhenHandedOut()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "z.qcow2", "16M");
        Qemu.Io(dir.Path, "z.qcow2", "write -P 1 0 64k");
        byte[] image = File.ReadAllBytes(dir.File("z.qcow2"));
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan((int)L1Offset(image))) & ~Copied);
        SetRefcount(image, l2 >> 16, 0);
        File.WriteAllBytes(dir.File("z.qcow2"), image);
        byte[] table = ClusterAt(dir.File("z.qcow2"), l2);

        using (QcowImage qcow = QcowImage.Open(dir.File("z.qcow2")))
        {
            var refused = Assert.Throws<QcowFormatException>(() => qcow.Write(8 << 20, new byte[65536]));
            Assert.Equal(QcowFormatErrorKind.OverlapsMetadata, refused.Kind);
            Assert.Equal(QcowStructure.L2Table, refused.Structure);
        }

        Assert.Equal(table, ClusterAt(dir.File("z.qcow2"), l2));
    }

    /// <summary>Points the L2 entry of guest cluster 0 (and its L1 entry) at the metadata, COPIED, so a write takes the in-place path; returns the metadata's offset.</summary>
    private static long MapGuestZeroOnto(string path, Target target)
    {
        byte[] image = File.ReadAllBytes(path);
        long l1 = L1Offset(image);
        long reftable = (long)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan(48));
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan((int)l1)) & ~Copied);
        long victim = target switch
        {
            Target.RefcountBlock => (long)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan((int)reftable)),
            Target.RefcountTable => reftable,
            Target.ActiveL1 => l1,
            Target.ActiveL2 => l2,
            _ => (long)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan((int)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan(64)))),
        };
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan((int)l1), (ulong)l2 | Copied);
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan((int)l2), (ulong)victim | Copied);
        File.WriteAllBytes(path, image);
        return victim;
    }

    private static long L1Offset(byte[] image) => (long)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan(40));

    private static long IncompatibleFeatures(string path) => (long)BinaryPrimitives.ReadUInt64BigEndian(File.ReadAllBytes(path).AsSpan(72));

    /// <summary>Sets a 16-bit refcount in the first refcount block (64 KiB clusters).</summary>
    private static void SetRefcount(byte[] image, long cluster, ushort value)
    {
        long reftable = (long)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan(48));
        long block = (long)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan((int)reftable));
        BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan((int)(block + cluster * 2)), value);
    }

    private static byte[] ClusterAt(string path, long offset)
    {
        byte[] image = File.ReadAllBytes(path);
        return image.AsSpan((int)offset, Math.Min(65536, image.Length - (int)offset)).ToArray();
    }
}
