// Model-based: seeded random sequences of writes, zero writes, discards, snapshot create, apply
// and delete, and reopens, run against a model that holds the active disk and every snapshot as
// byte arrays. After each step the image reads as the model (the active state, and now and then
// every snapshot); at the end of each sequence Qcow's check finds no corruption and no leak.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Examples.Oracle;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.Reliability;

public sealed class SnapshotModelTests
{
    private const long DiskSize = 1 << 20;

    [Theory]
    [InlineData(512, 16)]
    [InlineData(4096, 16)]
    [InlineData(65536, 64)]
    [InlineData(4096, 4)]
    public void RandomSequences_ReadAsTheModel_AndLeaveACleanImage(int clusterSize, int refcountBits)
    {
        for (int seed = 1; seed <= 12; seed++)
        {
            RunSequence(clusterSize, refcountBits, seed);
        }
    }

    private static void RunSequence(int clusterSize, int refcountBits, int seed)
    {
        using var dir = new TempDir();
        string path = dir.File("image");
        QcowImage.Create(path, new QcowCreateOptions { Size = DiskSize, ClusterSize = clusterSize, RefcountBits = refcountBits }).Dispose();
        var storage = new MemoryStorage(path, File.ReadAllBytes(path));
        var random = new Random(seed);
        byte[] active = new byte[DiskSize];
        var snapshots = new List<(string Id, byte[] Content)>();
        var options = new DeviceOptions(true, false, 256 << 10, NullLogger.Instance);
        QcowDevice device = QcowDevice.Open(storage, options, (_, _) => null);
        try
        {
            for (int step = 0; step < 40; step++)
            {
                string where = $"{clusterSize} B clusters, {refcountBits}-bit refcounts, seed {seed}, step {step}";
                int kind = random.Next(12);
                if (kind < 7)
                {
                    GuestOp(device, random, active);
                }
                else
                {
                    // Snapshot changes need the image to themselves: close it, change, reopen.
                    device.Dispose();
                    SnapshotChange(storage, random, kind, active, snapshots, step);
                    device = QcowDevice.Open(storage, options, (_, _) => null);
                }

                byte[] read = new byte[DiskSize];
                device.Read(0, read);
                Assert.True(read.AsSpan().SequenceEqual(active), $"{where}: the active state differs from the model");
                if (kind == 11)
                {
                    AssertSnapshotsRead(storage, snapshots, where);
                }
            }
        }
        finally
        {
            device.Dispose();
        }

        AssertSnapshotsRead(storage, snapshots, $"seed {seed}, at the end");
        CheckReport report = ImageChecker.Check(storage, QcowDevice.ReadHeader(storage));
        Assert.True(report.Corruptions == 0 && report.Leaks == 0, $"seed {seed}: {report.Corruptions} corruptions, {report.Leaks} leaks: {string.Join("; ", report.Messages.Take(5))}");
    }

    private static void GuestOp(QcowDevice device, Random random, byte[] active)
    {
        long offset = random.NextInt64(DiskSize - 1);
        long length = Math.Min(DiskSize - offset, random.Next(1, 70_000));
        switch (random.Next(5))
        {
            case 0:
                device.WriteZeroes(offset, length);
                Array.Clear(active, (int)offset, (int)length);
                break;
            case 1:
                // A discard may leave the bytes or zero them (partial clusters stay); the model takes what the image reads.
                device.Discard(offset, length);
                device.Read(offset, active.AsSpan((int)offset, (int)length));
                break;
            default:
                byte[] data = new byte[length];
                random.NextBytes(data);
                device.Write(offset, data);
                data.CopyTo(active, offset);
                break;
        }
    }

    private static void SnapshotChange(MemoryStorage storage, Random random, int kind, byte[] active, List<(string Id, byte[] Content)> snapshots, int step)
    {
        if (snapshots.Count == 0 || kind < 9)
        {
            try
            {
                var created = SnapshotEditor.Create(storage, $"s{step}", DateTimeOffset.UnixEpoch, NullLogger.Instance);
                snapshots.Add((created.Id, (byte[])active.Clone()));
            }
            catch (QcowRefcountOverflowException)
            {
                // Narrow refcounts hold no more snapshots of some cluster; the image stays as it was.
            }
        }
        else if (kind == 9)
        {
            (string id, byte[] content) = snapshots[random.Next(snapshots.Count)];
            SnapshotEditor.Apply(storage, id, NullLogger.Instance);
            content.CopyTo(active, 0);
        }
        else
        {
            int index = random.Next(snapshots.Count);
            SnapshotEditor.Delete(storage, snapshots[index].Id, NullLogger.Instance);
            snapshots.RemoveAt(index);
        }
    }

    private static void AssertSnapshotsRead(MemoryStorage storage, List<(string Id, byte[] Content)> snapshots, string where)
    {
        foreach ((string id, byte[] content) in snapshots)
        {
            using QcowDevice device = QcowDevice.Open(storage, new DeviceOptions(false, false, 256 << 10, NullLogger.Instance, Snapshot: new SnapshotChoice(id, null)), (_, _) => null);
            byte[] read = new byte[DiskSize];
            device.Read(0, read);
            Assert.True(read.AsSpan().SequenceEqual(content), $"{where}: snapshot {id} differs from the model");
        }
    }
}
