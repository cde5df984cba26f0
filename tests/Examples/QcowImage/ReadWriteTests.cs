// Examples of the public API: create, write, read back, stream, async, reopen, errors.
using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class ReadWriteTests
{
    [Fact]
    public void Write_ThenRead_ReturnsTheBytes_AcrossClustersAndReopen()
    {
        using var dir = new TempDir();
        byte[] data = new byte[200_000];
        new Random(7).NextBytes(data);
        using (QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20, ClusterSize = 4096 }))
        {
            image.Write(12345, data);
        }

        using QcowImage reopened = QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { ReadOnly = true });
        byte[] back = new byte[data.Length];
        Assert.Equal(data.Length, reopened.Read(12345, back));
        Assert.Equal(data, back);
    }

    [Fact]
    public void Read_ReturnsFewerBytes_AtTheEndOfTheDisk()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 4096 });
        Assert.Equal(96, image.Read(4000, new byte[512]));
        Assert.Equal(0, image.Read(4096, new byte[512]));
    }

    [Fact]
    public void Write_Throws_PastTheEnd()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 4096 });
        Assert.Throws<ArgumentOutOfRangeException>(() => image.Write(4000, new byte[512]));
    }

    [Fact]
    public void Write_Throws_WhenReadOnly()
    {
        using var dir = new TempDir();
        QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 4096 }).Dispose();
        using QcowImage image = QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { ReadOnly = true });
        Assert.Throws<InvalidOperationException>(() => image.Write(0, new byte[1]));
    }

    [Fact]
    public void AsStream_SeeksReadsAndWrites()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20 });
        using Stream stream = image.AsStream();
        stream.Seek(70_000, SeekOrigin.Begin);
        stream.Write("hello"u8);
        stream.Position = 70_000;
        byte[] back = new byte[5];
        stream.ReadExactly(back);
        Assert.Equal("hello"u8.ToArray(), back);
        Assert.Equal(1 << 20, stream.Length);
    }

    [Fact]
    public async Task WriteAsync_ThenReadAsync_RoundTrips()
    {
        using var dir = new TempDir();
        await using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20 });
        await image.WriteAsync(100, new byte[] { 1, 2, 3 });
        byte[] back = new byte[3];
        Assert.Equal(3, await image.ReadAsync(100, back));
        Assert.Equal(new byte[] { 1, 2, 3 }, back);
    }

    [OracleFact]
    public async Task FlushAsync_AndDisposeAsync_LeaveAnImageQemuReadsBack()
    {
        using var dir = new TempDir();
        byte[] data = new byte[200_000];
        new Random(9).NextBytes(data);
        await using (QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20 }))
        {
            await image.WriteAsync(3000, data);
            await image.FlushAsync();
            await image.WriteAsync(600_000, data);
        }

        Qemu.Ok("qemu-img", dir.Path, "check", "a.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "convert", "-O", "raw", "a.qcow2", "a.raw");
        byte[] raw = File.ReadAllBytes(dir.File("a.raw"));
        Assert.Equal(data, raw[3000..203_000]);
        Assert.Equal(data, raw[600_000..800_000]);
    }

    [Fact]
    public async Task FlushAsync_Throws_WhenCancelled()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 4096 });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await image.FlushAsync(new CancellationToken(true)));
    }

    [Fact]
    public async Task ReadAsync_Throws_WhenCancelled()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 4096 });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await image.ReadAsync(0, new byte[1], new CancellationToken(true)));
    }

    [Fact]
    public void WriteZeroes_AndDiscard_ReadAsZeros_OnVersion3()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20, ClusterSize = 4096 });
        byte[] ones = new byte[64 << 10];
        ones.AsSpan().Fill(1);
        image.Write(0, ones);
        image.WriteZeroes(100, 10_000);
        image.Discard(32 << 10, 8192);
        byte[] back = new byte[64 << 10];
        image.Read(0, back);
        Assert.All(back.AsSpan(100, 10_000).ToArray(), b => Assert.Equal(0, b));
        Assert.All(back.AsSpan(32 << 10, 8192).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(1, back[99]);
        Assert.Equal(1, back[(32 << 10) + 8192]);
    }

    [Fact]
    public void Open_Throws_WhenThePolicyDeniesTheBackingFile()
    {
        using var dir = new TempDir();
        QcowImage.Create(dir.File("base.qcow2"), new QcowCreateOptions { Size = 4096 }).Dispose();
        QcowImage.Create(dir.File("top.qcow2"), new QcowCreateOptions { Size = 4096, BackingFile = "base.qcow2" }).Dispose();

        Assert.Throws<UnauthorizedAccessException>(() => QcowImage.Open(dir.File("top.qcow2"), new QcowOpenOptions { ReferencedFiles = ReferencedFilePolicy.DenyAll }));
    }

    [Fact]
    public void Open_NeverFollows_AJsonBackingName()
    {
        using var dir = new TempDir();
        Assert.Equal(0, Cli.Cli.Run(["create", "-q", "-u", "-f", "qcow2", "-b", "json:{\"file.filename\":\"/etc/passwd\"}", "-F", "raw", dir.File("top.qcow2"), "4096"], TextWriter.Null, TextWriter.Null));

        Assert.Throws<UnauthorizedAccessException>(() => QcowImage.Open(dir.File("top.qcow2")));
    }

    [Fact]
    public void Info_ReportsTheHeader()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 30, RefcountBits = 64, LazyRefcounts = true });
        QcowInfo info = image.Info;
        Assert.Equal((QcowImageFormat.Qcow2, 3, (QcowCompat?)QcowCompat.V1_1, 65536, 64, true), (info.Format, info.Version, info.Compat, info.ClusterSize, info.RefcountBits, info.LazyRefcounts));
    }

    [Fact]
    public void FourKiBReads_AndInPlaceOverwrites_OfAllocatedClusters_AllocateNothing()
    {
        using var dir = new TempDir();
        using QcowImage image = QcowImage.Create(dir.File("hot.qcow2"), new QcowCreateOptions { Size = 8 << 20 });
        byte[] block = new byte[4096];
        image.Write(0, new byte[1 << 20]);
        image.Flush();
        image.Read(4096, block);
        image.Write(8192, block);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            image.Read(i % 256 * 4096L, block);
        }

        long afterReads = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            image.Write(i % 256 * 4096L, block);
        }

        long afterWrites = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, afterReads - before);
        Assert.Equal(0, afterWrites - afterReads);
    }
}
