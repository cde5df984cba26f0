// Hostile images after the CVEs QEMU fixed in its qcow and qcow2 drivers, and the classes the
// fuzzer found: each gives a QcowFormatException (or the documented refusal) quickly, without
// allocating much, and never makes Qcow open a file the image names or write far past its end.
// OpenTests covers the header classes of QEMU's iotest 080 that these do not repeat.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using Qcow.Examples.Oracle;
using Qcow.Format;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.Reliability;

public sealed class HostileImageTests
{
    /// <summary>What opening, checking or reading a hostile image may allocate.</summary>
    private const long AllocationCap = 64L << 20;

    private static readonly QcowOpenOptions s_readOnly = new() { ReadOnly = true };

    [Fact]
    public void MisalignedL2Entry_IsRefused_NamingTheEntryWhereItLies()
    {
        using var dir = new TempDir();
        string path = dir.File("misaligned.qcow2");
        long entryAt;
        using (QcowImage image = QcowImage.Create(path, new QcowCreateOptions { Size = 1 << 20 }))
        {
            image.Write(0, new byte[] { 1 });
            image.Flush();
            entryAt = image.Explain(0).Layers[0].L2EntryOffset!.Value;
        }

        byte[] file = File.ReadAllBytes(path);
        ulong entry = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(file.AsSpan((int)entryAt));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(file.AsSpan((int)entryAt), entry | 0x200);
        File.WriteAllBytes(path, file);

        using QcowImage damaged = QcowImage.Open(path, s_readOnly);
        var e = Assert.Throws<QcowFormatException>(() => damaged.Read(0, new byte[512]));

        Assert.Equal((QcowStructure.L2Table, entryAt), (e.Structure, e.Offset));
        Assert.Contains("not cluster-aligned", e.Message, StringComparison.Ordinal);
    }

    /// <summary>CVE-2014-0222: cluster_bits and l2_bits whose sum overflows the L2 and L1 arithmetic.</summary>
    [Theory]
    [InlineData(63, 63, 32)]
    [InlineData(255, 255, 32)]
    [InlineData(17, 9, 32)]
    [InlineData(9, 14, 33)]
    [InlineData(16, 64, 33)]
    [InlineData(12, 255, 33)]
    public void OpenV1_Throws_WhenClusterOrL2BitsOverflow(int clusterBits, int l2Bits, long field)
    {
        using var dir = new TempDir();
        string path = CreateV1(dir, 1L << 30);
        Poke(path, 32, (ulong)clusterBits, 1);
        Poke(path, 33, (ulong)l2Bits, 1);

        var e = Assert.Throws<QcowFormatException>(() => Measured(() => QcowImage.Open(path, s_readOnly).Dispose()));
        Assert.Equal((QcowFormatErrorKind.FieldOutOfRange, QcowStructure.Header, field), (e.Kind, e.Structure, e.Offset));
    }

    /// <summary>CVE-2014-0223: a size whose L1 table (derived from it in qcow v1) overflows 32 bits of bytes.</summary>
    [Theory]
    [InlineData(9, 6, 1UL << 43)]
    [InlineData(16, 13, ulong.MaxValue)]
    [InlineData(16, 13, ulong.MaxValue - (1UL << 29) + 1)]
    public void OpenV1_Throws_WhenTheSizeOverflowsTheL1Table(int clusterBits, int l2Bits, ulong size)
    {
        using var dir = new TempDir();
        string path = CreateV1(dir, 1L << 30);
        Poke(path, 24, size, 8);
        Poke(path, 32, (ulong)clusterBits, 1);
        Poke(path, 33, (ulong)l2Bits, 1);

        var e = Assert.Throws<QcowFormatException>(() => Measured(() => QcowImage.Open(path, s_readOnly).Dispose()));
        Assert.Equal((QcowFormatErrorKind.FieldOutOfRange, QcowStructure.Header, 24L), (e.Kind, e.Structure, e.Offset));
    }

    /// <summary>The largest L1 table qcow v1 allows (2^28 − 1 entries, 2 GiB) is read only as far as the file holds it.</summary>
    [Fact]
    public void OpenV1_ReadsTheLargestL1TableWithoutAllocatingIt()
    {
        using var dir = new TempDir();
        string path = CreateV1(dir, 1L << 30);
        long size = ((1L << 28) - 1) << 15;
        Poke(path, 24, (ulong)size, 8);
        Poke(path, 32, 9, 1);
        Poke(path, 33, 6, 1);

        Measured(() =>
        {
            using QcowImage image = QcowImage.Open(path, s_readOnly);
            Assert.Equal(size, image.Length);
            AssertReadsZeroes(image, 0, size / 2, size - 4096);
            Assert.Throws<NotSupportedException>(() => image.Check());
        });
        Assert.Throws<QcowFormatException>(() => QcowImage.Open(path).Dispose());
    }

    /// <summary>
    /// CVE-2014-0223, compressed clusters: a v1 descriptor whose length field is all ones, with its
    /// stream at the last byte the offset field holds, past the end of the file, or over the header.
    /// </summary>
    [Theory]
    [InlineData(0x7ffffffffffffUL)]
    [InlineData(0x100000UL)]
    [InlineData(0UL)]
    public void ReadV1_Throws_WhenACompressedClusterDoesNotInflate(ulong streamHost)
    {
        using var dir = new TempDir();
        string path = CreateV1(dir, 1L << 20, data: true);
        ulong entry = L2Entry.V1CompressedFlag | (4095UL << (63 - 12)) | streamHost;
        Poke(path, (long)FirstL2Table(path), entry, 8);
        long length = new FileInfo(path).Length;

        Measured(() =>
        {
            using (QcowImage image = QcowImage.Open(path, s_readOnly))
            {
                var e = Assert.Throws<QcowFormatException>(() => image.Read(0, new byte[4096]));
                Assert.Equal((QcowFormatErrorKind.BadCompressedData, QcowStructure.CompressedCluster), (e.Kind, e.Structure));
            }

            using QcowImage writable = QcowImage.Open(path);
            Assert.Throws<QcowFormatException>(() => writable.Write(100, new byte[100]));
        });
        Assert.Equal(length, new FileInfo(path).Length);
    }

    public static IEnumerable<object[]> ProtocolNames() =>
    [
        ["json:{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}"],
        ["json:{\"file\":{\"driver\":\"nbd\",\"host\":\"127.0.0.1\",\"port\":\"10809\"}}"],
        ["nbd://127.0.0.1:10809/disk"],
        ["nbd:127.0.0.1:10809"],
        ["http://example.com/base.img"],
        ["file:base.raw"],
    ];

    /// <summary>
    /// CVE-2015-5163 class: a backing name with a protocol prefix is never followed, not even to a
    /// file of that very name beside the image, and the policy is not asked about it.
    /// </summary>
    [Theory]
    [MemberData(nameof(ProtocolNames))]
    public void Open_NeverFollowsABackingNameWithAProtocol(string name)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("base.raw"), new byte[1 << 20]);
        if (!name.Contains('/'))
        {
            File.WriteAllBytes(dir.File(name), new byte[1 << 20]);
        }

        var asked = new List<string>();
        var policy = new ReferencedFilePolicy(file =>
        {
            asked.Add(file.Name);
            return true;
        });
        string qcow2 = dir.File("image.qcow2");
        ImageCreator.CreateQcow2(qcow2, QcowImage.Qcow2Options(new QcowCreateOptions { Size = 1 << 20, BackingFile = name }, 1 << 20));
        string v1 = dir.File("image.qcow");
        ImageCreator.CreateQcowV1(v1, 1 << 20, name);

        foreach (string path in new[] { qcow2, v1 })
        {
            Assert.Throws<UnauthorizedAccessException>(() => QcowImage.Open(path, new QcowOpenOptions { ReadOnly = true, ReferencedFiles = policy }).Dispose());
            Assert.Throws<UnauthorizedAccessException>(() => QcowImage.Open(path, new QcowOpenOptions { ReferencedFiles = policy }).Dispose());
        }

        Assert.Empty(asked);
    }

    /// <summary>
    /// CVE-2015-5162 class: a 2 PiB disk in a 192 KiB file, its 32 MiB L1 table wholly past the end.
    /// Open, reads far apart and Check stay small and quick; writing is refused, for the L1 table
    /// is not in the file to be written.
    /// </summary>
    [Fact]
    public void TinyPetabyteImage_OpensReadsAndChecks_WithoutExhaustingMemoryOrTime()
    {
        using var dir = new TempDir();
        string path = dir.File("tiny.qcow2");
        QcowImage.Create(path, new QcowCreateOptions { Size = 1L << 51 }).Dispose();
        using (FileStream file = File.OpenWrite(path))
        {
            file.SetLength(0x30000);
        }

        var clock = Stopwatch.StartNew();
        Measured(() =>
        {
            using QcowImage image = QcowImage.Open(path, s_readOnly);
            Assert.Equal(1L << 51, image.Length);
            AssertReadsZeroes(image, 0, 1L << 40, (1L << 50) + 12345, (1L << 51) - 4096);
            Assert.True(image.Check().Corruptions > 0, "the L1 table past the end of the file is a corruption");
        });
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        var e = Assert.Throws<QcowFormatException>(() => QcowImage.Open(path).Dispose());
        Assert.Equal((QcowFormatErrorKind.Truncated, QcowStructure.L1Table), (e.Kind, e.Structure));
    }

    /// <summary>CVE-2015-5162 class: 65536 snapshots claimed, their table past the end of the file; refused at open, as QEMU refuses it.</summary>
    [Fact]
    public void Open_Throws_WhenTheSnapshotTableIsPastTheEnd()
    {
        using var dir = new TempDir();
        string path = dir.File("snapshots.qcow2");
        QcowImage.Create(path, new QcowCreateOptions { Size = 1 << 20 }).Dispose();
        Poke(path, 60, 65536, 4);
        Poke(path, 64, 1UL << 40, 8);

        Measured(() =>
        {
            var e = Assert.Throws<QcowFormatException>(() => QcowImage.Open(path, s_readOnly).Dispose());
            Assert.Equal((QcowFormatErrorKind.Truncated, QcowStructure.SnapshotTable), (e.Kind, e.Structure));
        });
    }

    /// <summary>
    /// Every refcount table entry names one block whose 1-bit refcounts claim all 2^19 clusters in
    /// use (256 TiB covered in all): a write is refused soon after the end of the file instead of
    /// walking 2^32 refcounts and allocating hundreds of terabytes away.
    /// </summary>
    [Fact]
    public void Write_Throws_WhenRefcountsClaimEveryClusterInUse()
    {
        using var dir = new TempDir();
        string path = dir.File("full.qcow2");
        QcowImage.Create(path, new QcowCreateOptions { Size = 1 << 20, RefcountBits = 1 }).Dispose();
        using (FileStream file = File.OpenWrite(path))
        {
            byte[] table = new byte[65536];
            for (int i = 0; i < table.Length; i += 8)
            {
                BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(i), 0x20000);
            }

            byte[] claimsAll = new byte[65536];
            Array.Fill(claimsAll, (byte)0xff);
            file.Position = 0x10000;
            file.Write(table);
            file.Write(claimsAll);
        }

        long length = new FileInfo(path).Length;
        var clock = Stopwatch.StartNew();
        using (QcowImage image = QcowImage.Open(path))
        {
            var e = Assert.Throws<QcowFormatException>(() => image.Write(0, new byte[4096]));
            Assert.Equal((QcowFormatErrorKind.Inconsistent, QcowStructure.RefcountTable), (e.Kind, e.Structure));
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.Equal(length, new FileInfo(path).Length);
    }

    private static string CreateV1(TempDir dir, long size, bool data = false)
    {
        string path = dir.File("image.qcow");
        using QcowImage image = QcowImage.Create(path, new QcowCreateOptions { Size = size, Format = QcowImageFormat.Qcow });
        if (data)
        {
            image.Write(0, new byte[4096]);
        }

        return path;
    }

    /// <summary>The L2 table L1 entry 0 of a qcow v1 image names (its L1 table is at 48, after a header without a backing name).</summary>
    private static ulong FirstL2Table(string path)
    {
        byte[] entry = new byte[8];
        using FileStream file = File.OpenRead(path);
        file.Position = 48;
        file.ReadExactly(entry);
        return BinaryPrimitives.ReadUInt64BigEndian(entry);
    }

    /// <summary>Writes the low <paramref name="width"/> bytes of a value, big-endian, at a file offset.</summary>
    private static void Poke(string path, long at, ulong value, int width)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        using FileStream file = File.OpenWrite(path);
        file.Position = at;
        file.Write(bytes, 8 - width, width);
    }

    private static void AssertReadsZeroes(QcowImage image, params long[] offsets)
    {
        byte[] buffer = new byte[4096];
        foreach (long offset in offsets)
        {
            Array.Fill(buffer, (byte)1);
            image.Read(offset, buffer);
            Assert.All(buffer, b => Assert.Equal(0, b));
        }
    }

    /// <summary>Runs an action and fails if it allocates more than the cap on this thread; exceptions pass through.</summary>
    private static void Measured(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            action();
        }
        finally
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationCap, $"allocated {allocated >> 20} MiB");
        }
    }
}
