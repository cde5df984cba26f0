// Crash consistency of zero expansion (a downgrade's first step): seeded images with zero
// clusters, plain and allocated, some under snapshots, are expanded on CrashStorage; the power is
// then cut after every write and flush (the last write sometimes torn). After each cut, once a
// dirty image has had the repair its next read-write open gives it, the active state and every
// snapshot read as before, and neither Qcow's check nor qemu-img check finds a corruption.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Examples.Oracle;
using Qcow.Format;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.Reliability;

public sealed class ZeroExpansionCrashTests
{
    private const long DiskSize = 2 << 20;

    [OracleTheory]
    [InlineData(1, 65536)]
    [InlineData(2, 4096)]
    [InlineData(3, 512)]
    public void EveryCutPoint_OfAZeroExpansion_KeepsWhatEveryStateReads(int seed, int clusterSize)
    {
        using var dir = new TempDir(CrashTests.ScratchRoot());
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"cluster_size={clusterSize}", "image", "2M");
        var random = new Random(seed);
        for (int round = 0; round < 3; round++)
        {
            string[] ops = [.. Enumerable.Range(0, 6).Select(_ => RandomOp(random, clusterSize))];
            Qemu.Io(dir.Path, "image", ops);
            Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", $"s{round}", "image");
        }

        // Zeros over shared clusters (they need new ones) and over the image's own data (zeroed in place).
        Qemu.Io(dir.Path, "image", "write -z 0 256k", "write -P 9 1M 512k", "write -z 1M 256k");
        string path = dir.File("image");
        var storage = new CrashStorage(path, File.ReadAllBytes(path));
        string before = Read(storage.Contents, path);
        ZeroExpander.Expand(storage, QcowDevice.ReadHeader(storage), NullLogger.Instance);
        Assert.False(ClusterRoles.Of(storage, QcowDevice.ReadHeader(storage)).HasZeroClusters);

        var tear = new Random(seed * 7919);
        var seen = new HashSet<string>();
        int cuts = 0;
        foreach ((int cut, byte[] cutImage) in storage.Cuts(c => tear.Next(4) == 0 ? tear.Next(1, 9) : 0))
        {
            // A cut leaves the image dirty: it is judged after the repair its next read-write open gives it.
            byte[] image = CrashTests.RepairedIfDirty(path, cutImage);
            string where = $"{clusterSize}-byte clusters, seed {seed}, cut {cut}";
            Assert.True(Read(image, path) == before, $"{where}: the guest reads other bytes than before the expansion");
            if (seen.Add(Convert.ToHexString(SHA256.HashData(image))))
            {
                AssertNoCorruption(where, dir, image);
            }

            cuts++;
        }

        Assert.True(cuts > 10, $"only {cuts} cut points");
    }

    private static string RandomOp(Random random, int clusterSize)
    {
        long offset = random.NextInt64(DiskSize) & ~511L;
        long length = Math.Min(DiskSize - offset, random.Next(1, 8 * clusterSize / 512 + 1) * 512L);
        return random.Next(3) switch
        {
            0 => $"write -z {offset} {length}",
            1 => $"write -z -u {offset} {length}",
            _ => $"write -P {random.Next(1, 255)} {offset} {length}",
        };
    }

    /// <summary>The active state's bytes and every snapshot's, as one hash each.</summary>
    private static string Read(byte[] image, string path)
    {
        var storage = new CrashStorage(path, image, canWrite: false);
        var hashes = new List<string>();
        IReadOnlyList<Snapshot> snapshots;
        using (QcowDevice device = QcowDevice.Open(storage, new DeviceOptions(false, false, 1 << 20, NullLogger.Instance), (_, _) => null))
        {
            hashes.Add(Content(device));
            snapshots = device.Snapshots;
        }

        foreach (Snapshot s in snapshots)
        {
            using QcowDevice device = QcowDevice.Open(storage, new DeviceOptions(false, false, 1 << 20, NullLogger.Instance, Snapshot: new SnapshotChoice(s.Id, null)), (_, _) => null);
            hashes.Add(Content(device));
        }

        return string.Join(",", hashes);
    }

    private static string Content(QcowDevice device)
    {
        byte[] bytes = new byte[device.Length];
        device.Read(0, bytes);
        return Convert.ToHexString(SHA256.HashData(bytes))[..16];
    }

    private static void AssertNoCorruption(string where, TempDir dir, byte[] image)
    {
        var storage = new CrashStorage(dir.File("image"), image, canWrite: false);
        CheckReport report = ImageChecker.Check(storage, QcowDevice.ReadHeader(storage));
        Assert.True(report.Corruptions == 0, $"{where}: Qcow's check finds corruption: {string.Join("; ", report.Messages.Take(5))}");

        string file = dir.File("cut");
        File.WriteAllBytes(file, image);
        var (code, stdout, stderr) = Qemu.Run("qemu-img", dir.Path, "check", "--output=json", "cut");
        Assert.True(code is 0 or 3, $"{where}: qemu-img check exited {code}: {stderr}{stdout}");
        using JsonDocument json = JsonDocument.Parse(stdout);
        Assert.False(json.RootElement.TryGetProperty("corruptions", out _), $"{where}: {stdout}");
    }
}
