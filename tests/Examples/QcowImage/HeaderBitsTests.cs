// The header's feature bits as QEMU treats them: the corrupt bit keeps an image read-only unless
// forced, autoclear bits are cleared before the first write, unknown compatible bits are kept.
using System.Buffers.Binary;
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class HeaderBitsTests
{
    private static ulong ReadField(string path, int at)
    {
        byte[] b = new byte[8];
        using FileStream f = File.OpenRead(path);
        f.Position = at;
        f.ReadExactly(b);
        return BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    private static void WriteField(string path, int at, ulong value)
    {
        byte[] b = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        using FileStream f = File.OpenWrite(path);
        f.Position = at;
        f.Write(b);
    }

    [Fact]
    public void Open_RefusesReadWrite_WhenMarkedCorrupt_UnlessForced()
    {
        using var dir = new TempDir();
        string path = dir.File("c.qcow2");
        QcowImage.Create(path, new QcowCreateOptions { Size = 1 << 20 }).Dispose();
        WriteField(path, 72, 2);

        var e = Assert.Throws<QcowFormatException>(() => QcowImage.Open(path).Dispose());
        Assert.Equal((QcowStructure.Header, 72L), (e.Structure, e.Offset));
        using (QcowImage readOnly = QcowImage.Open(path, new QcowOpenOptions { ReadOnly = true }))
        {
            Assert.True(readOnly.Info.Corrupt);
        }

        using QcowImage forced = QcowImage.Open(path, new QcowOpenOptions { ForceCorrupt = true });
        Assert.True(forced.CanWrite);
    }

    [Fact]
    public void OpenReadWrite_ClearsAutoclearBits_AndKeepsUnknownCompatibleBits()
    {
        using var dir = new TempDir();
        string path = dir.File("a.qcow2");
        QcowImage.Create(path, new QcowCreateOptions { Size = 1 << 20 }).Dispose();
        WriteField(path, 80, 1UL << 33);
        WriteField(path, 88, (1UL << 40) | 1);

        using (QcowImage readOnly = QcowImage.Open(path, new QcowOpenOptions { ReadOnly = true }))
        {
            Assert.Equal((1UL << 40) | 1, readOnly.Info.FeatureBits[2]);
        }

        using (QcowImage image = QcowImage.Open(path))
        {
            image.Write(0, new byte[] { 1 });
        }

        Assert.Equal(0UL, ReadField(path, 88));
        Assert.Equal(1UL << 33, ReadField(path, 80));
    }
}
