// One QcowImage shared by several threads: writes, zero writes and reads of disjoint ranges, all
// allocating at once, each thread checking its own bytes; then every kind of request on
// overlapping ranges, checked against a model that knows only each thread's own order. Either
// way the result is clean for qemu-img.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Examples.Oracle;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class ConcurrencyTests
{
    [Fact]
    public void SharedImage_ServesThreadsWritingAndReadingDisjointRanges()
    {
        using var dir = new TempDir();
        const int Threads = 6;
        const int Span = 4 << 20;
        using (QcowImage image = QcowImage.Create(dir.File("shared.qcow2"), new QcowCreateOptions { Size = Threads * (long)Span, ClusterSize = 4096 }))
        {
            Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
            {
                var random = new Random(t);
                byte[] model = new byte[Span];
                byte[] buffer = new byte[70_000];
                for (int i = 0; i < 300; i++)
                {
                    int offset = random.Next(Span - buffer.Length);
                    int length = random.Next(1, buffer.Length);
                    long at = (long)t * Span + offset;
                    switch (random.Next(3))
                    {
                        case 0:
                            random.NextBytes(buffer.AsSpan(0, length));
                            image.Write(at, buffer.AsSpan(0, length));
                            buffer.AsSpan(0, length).CopyTo(model.AsSpan(offset));
                            break;
                        case 1:
                            image.WriteZeroes(at, length);
                            model.AsSpan(offset, length).Clear();
                            break;
                        default:
                            image.Read(at, buffer.AsSpan(0, length));
                            Assert.True(buffer.AsSpan(0, length).SequenceEqual(model.AsSpan(offset, length)), $"thread {t} read {i} differs");
                            break;
                    }
                }
            });
        }

        if (Qemu.ImgPath != null)
        {
            Qemu.AssertClean(dir.Path, "shared.qcow2");
        }
    }

    private const int Sector = 512;

    private enum OpKind
    {
        Write,
        Zero,
        Discard,
        Read,
    }

    /// <summary>One request: its sectors, and for writes the stamp every 8 bytes of them carry; for reads, what each sector held.</summary>
    private sealed record Op(int Thread, OpKind Kind, long First, int Sectors, ulong Stamp, ulong[]? Seen)
    {
        public bool Covers(long sector) => Kind != OpKind.Read && sector >= First && sector < First + Sectors;

        /// <summary>What the request leaves in a sector it covers: its stamp, or zeros.</summary>
        public ulong Leaves => Kind == OpKind.Write ? Stamp : 0;
    }

    [Fact]
    public void SharedImage_ServesOverlappingRequests_AsSomeOrderOfEachThreadsRequests()
    {
        using var dir = new TempDir();
        const int Threads = 4;
        const int Operations = 400;
        const long Size = 4 << 20;
        const int ClusterSize = 4096;
        var logs = new List<Op>[Threads];
        using (QcowImage image = QcowImage.Create(dir.File("overlap.qcow2"), new QcowCreateOptions { Size = Size, ClusterSize = ClusterSize }))
        {
            Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
            {
                var random = new Random(1000 + t);
                var log = logs[t] = new List<Op>();
                byte[] buffer = new byte[128 * Sector];
                for (int i = 0; i < Operations; i++)
                {
                    var kind = (OpKind)random.Next(4);
                    int sectors = kind == OpKind.Discard ? ClusterSize / Sector * random.Next(1, 8) : random.Next(1, 129);
                    long first = random.NextInt64(Size / Sector - sectors + 1);
                    if (kind == OpKind.Discard)
                    {
                        first -= first % (ClusterSize / Sector);
                    }

                    ulong stamp = ((ulong)(uint)(t + 1) << 40) | (uint)(i + 1);
                    Span<byte> bytes = buffer.AsSpan(0, sectors * Sector);
                    switch (kind)
                    {
                        case OpKind.Write:
                            for (int w = 0; w < bytes.Length; w += 8)
                            {
                                BinaryPrimitives.WriteUInt64LittleEndian(bytes[w..], stamp);
                            }

                            image.Write(first * Sector, bytes);
                            log.Add(new Op(t, kind, first, sectors, stamp, null));
                            break;
                        case OpKind.Zero:
                            image.WriteZeroes(first * Sector, bytes.Length);
                            log.Add(new Op(t, kind, first, sectors, 0, null));
                            break;
                        case OpKind.Discard:
                            image.Discard(first * Sector, bytes.Length);
                            log.Add(new Op(t, kind, first, sectors, 0, null));
                            break;
                        default:
                            image.Read(first * Sector, bytes);
                            log.Add(new Op(t, kind, first, sectors, 0, SectorValues(bytes, $"thread {t} read {i}")));
                            break;
                    }
                }
            });
        }

        var all = new List<Op>();
        foreach (List<Op> log in logs)
        {
            all.AddRange(log);
        }

        foreach (List<Op> log in logs)
        {
            for (int i = 0; i < log.Count; i++)
            {
                if (log[i].Kind != OpKind.Read)
                {
                    continue;
                }

                for (int s = 0; s < log[i].Sectors; s++)
                {
                    long sector = log[i].First + s;
                    ulong seen = log[i].Seen![s];
                    Op? own = log.GetRange(0, i).FindLast(op => op.Covers(sector));
                    bool fromOthers = all.Exists(op => op.Thread != log[i].Thread && op.Covers(sector) && op.Leaves == seen);
                    bool possible = own is null ? seen == 0 || fromOthers : own.Leaves == seen || fromOthers;
                    Assert.True(possible, $"thread {log[i].Thread} read {i}: sector {sector} held 0x{seen:x}, which no ordering of the requests explains");
                }
            }
        }

        using (QcowImage reopened = QcowImage.Open(dir.File("overlap.qcow2"), new QcowOpenOptions { ReadOnly = true }))
        {
            byte[] disk = new byte[Size];
            reopened.Read(0, disk);
            ulong[] final = SectorValues(disk, "final image");
            for (long sector = 0; sector < final.Length; sector++)
            {
                // Each thread's last request on a sector is the only one of its requests that can have the last word.
                var candidates = new List<ulong>();
                foreach (List<Op> log in logs)
                {
                    if (log.FindLast(op => op.Covers(sector)) is { } last)
                    {
                        candidates.Add(last.Leaves);
                    }
                }

                Assert.True(candidates.Count == 0 ? final[sector] == 0 : candidates.Contains(final[sector]), $"sector {sector} holds 0x{final[sector]:x}, not what any thread's last request on it left");
            }
        }

        if (Qemu.ImgPath != null)
        {
            Qemu.AssertClean(dir.Path, "overlap.qcow2");
        }
    }

    [Fact]
    public async Task Read_InFlight_WhenItsClusterIsFreed_KeepsTheClusterFromReuseUntilItEnds()
    {
        // Reads look the mapping up under the lock and read the file outside it. Here the file
        // read of cluster 0 is held up while another thread discards the cluster and flushes,
        // which would make it free for the next write to take: the flush must wait for the read.
        using var dir = new TempDir();
        const int ClusterSize = 4096;
        string path = dir.File("race.qcow2");
        QcowImage.Create(path, new QcowCreateOptions { Size = 1 << 20, ClusterSize = ClusterSize }).Dispose();
        var storage = new GatedStorage(FileStorage.Open(path, writable: true));
        using QcowImage image = QcowImage.Of(QcowDevice.Open(storage, new DeviceOptions(true, false, 1 << 20, NullLogger.Instance), (_, _) => null));
        byte[] old = new byte[ClusterSize];
        old.AsSpan().Fill(0x11);
        image.Write(0, old);
        image.Flush();
        storage.HoldReadsAt = image.GetBlockStatus(0, ClusterSize).HostOffset!.Value;

        byte[] seen = new byte[ClusterSize];
        Task read = Task.Run(() => image.Read(0, seen));
        Assert.True(storage.ReadHeld.Wait(TimeSpan.FromSeconds(10)), "the read reached the file");
        image.Discard(0, ClusterSize);
        Task flush = Task.Run(image.Flush);
        bool flushedDuringRead = await Task.WhenAny(flush, Task.Delay(300)) == flush;
        if (flushedDuringRead)
        {
            // The freed cluster is the first free one: this write would take it.
            byte[] other = new byte[ClusterSize];
            other.AsSpan().Fill(0x22);
            image.Write(ClusterSize, other);
        }

        storage.ReleaseReads.Set();
        await read;
        await flush;

        Assert.False(flushedDuringRead, "the flush freed a cluster a read was still reading");
        Assert.Equal(old, seen);
    }

    [Fact]
    public async Task Repair_WhileAnotherThreadReads_KeepsServingItTheSameImage()
    {
        // A repair rewrites refcounts on the open image, holding its lock; a reader meanwhile
        // waits, then goes on: it never sees a closed or different image.
        using var dir = new TempDir();
        string path = dir.File("leaky.qcow2");
        byte[] data = new byte[128 << 10];
        data.AsSpan().Fill(7);
        using (QcowImage image = QcowImage.Create(path, new QcowCreateOptions { Size = 16 << 20 }))
        {
            image.Write(0, data);
        }

        using (FileStream f = File.OpenWrite(path))
        {
            f.SetLength(12 * 65536);
        }

        CheckTests.SetRefcount16(path, 11, 1);
        using QcowImage shared = QcowImage.Open(path);
        using var stop = new System.Threading.CancellationTokenSource();
        int reads = 0;
        Task reader = Task.Run(() =>
        {
            byte[] seen = new byte[data.Length];
            while (!stop.IsCancellationRequested)
            {
                shared.Read(0, seen);
                Assert.Equal(data, seen);
                Interlocked.Increment(ref reads);
            }
        });
        while (Volatile.Read(ref reads) == 0)
        {
            await Task.Yield();
        }

        QcowCheckResult repaired = shared.Check(QcowCheckMode.RepairLeaks);
        int readsBefore = Volatile.Read(ref reads);
        while (Volatile.Read(ref reads) == readsBefore && !reader.IsCompleted)
        {
            await Task.Yield();
        }

        stop.Cancel();
        await reader;
        Assert.Equal((1L, 0L), (repaired.LeaksFixed, repaired.Leaks));
        Assert.True(shared.Check().IsClean);
    }

    [Fact]
    public async Task ManyWritesAsync_InFlightAtOnce_OverAllocatedAndNewClusters_LandWhereTheyBelong()
    {
        // Writes to clusters the image holds go out as asynchronous file writes; the rest are
        // planned. Both kinds, many in flight together, each block carrying its own stamp.
        using var dir = new TempDir();
        const int Block = 4096;
        const int Blocks = 512;
        using (QcowImage image = QcowImage.Create(dir.File("async.qcow2"), new QcowCreateOptions { Size = 2L * Blocks * Block, ClusterSize = 16384 }))
        {
            await image.WriteAsync(0, new byte[Blocks * Block]);
            var writes = new List<Task>();
            for (int b = 0; b < 2 * Blocks; b++)
            {
                byte[] stamp = new byte[Block];
                stamp.AsSpan().Fill((byte)(b % 251 + 1));
                writes.Add(image.WriteAsync((long)b * Block, stamp).AsTask());
            }

            await Task.WhenAll(writes);
            byte[] seen = new byte[Block];
            for (int b = 0; b < 2 * Blocks; b++)
            {
                Assert.Equal(Block, await image.ReadAsync((long)b * Block, seen));
                Assert.True(seen.AsSpan().IndexOfAnyExcept((byte)(b % 251 + 1)) < 0, $"block {b} holds another block's bytes");
            }

            Assert.True(image.Check().IsClean);
        }

        if (Qemu.ImgPath != null)
        {
            Qemu.AssertClean(dir.Path, "async.qcow2");
        }
    }

    /// <summary>A file whose reads at one offset wait until released, so that a test can act while one is in flight.</summary>
    private sealed class GatedStorage(IStorage inner) : IStorage
    {
        public long HoldReadsAt { get; set; } = -1;

        public System.Threading.ManualResetEventSlim ReadHeld { get; } = new();

        public System.Threading.ManualResetEventSlim ReleaseReads { get; } = new();

        public string Path => inner.Path;

        public bool CanWrite => inner.CanWrite;

        public long Length => inner.Length;

        public int Read(long offset, Span<byte> buffer)
        {
            if (offset == HoldReadsAt)
            {
                ReadHeld.Set();
                ReleaseReads.Wait();
            }

            return inner.Read(offset, buffer);
        }

        public void Write(long offset, ReadOnlySpan<byte> buffer) => inner.Write(offset, buffer);

        public void SetLength(long length) => inner.SetLength(length);

        public void Flush() => inner.Flush();

        public void Dispose() => inner.Dispose();
    }

    /// <summary>The stamp each sector holds; a sector whose words differ is torn, and fails the test.</summary>
    private static ulong[] SectorValues(ReadOnlySpan<byte> bytes, string what)
    {
        ulong[] values = new ulong[bytes.Length / Sector];
        for (int s = 0; s < values.Length; s++)
        {
            ReadOnlySpan<byte> sector = bytes.Slice(s * Sector, Sector);
            values[s] = BinaryPrimitives.ReadUInt64LittleEndian(sector);
            for (int w = 8; w < Sector; w += 8)
            {
                Assert.True(BinaryPrimitives.ReadUInt64LittleEndian(sector[w..]) == values[s], $"{what}: sector {s} is torn");
            }
        }

        return values;
    }
}
