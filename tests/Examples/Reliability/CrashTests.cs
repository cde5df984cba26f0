// Crash consistency: seeded workloads that allocate heavily run on CrashStorage; the power is
// then cut after every write and flush in turn (the last write sometimes torn). After each cut
// the image must open, Qcow's check and qemu-img check must find no corruption (leaks are
// allowed), flushed bytes must read back as written and later ones as old or new data.
// Injected I/O errors must reach the caller and leave an image that is just as consistent; a
// disk that fills up fails only the requests that need space, and every completed one survives.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Examples.Oracle;
using Qcow.Format;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.Reliability;

public sealed class CrashTests
{
    /// <summary>A starting image and how hard to drive it.</summary>
    internal sealed record Workload(string Name, int ClusterSize, long DiskSize, Action<TempDir> Setup)
    {
        public override string ToString() => Name;
    }

    private static readonly Workload[] s_workloads =
    [
        // 512 B clusters, 64-bit refcounts: a refcount block covers 64 clusters and the first
        // table 4096, so the 2 MiB written first leaves the workload to add blocks and grow it.
        new("512B clusters, 64-bit refcounts, refcount table growth", 512, 3 << 20, d =>
        {
            Qemu.Ok("qemu-img", d.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", "image", "3M");
            Qemu.Io(d.Path, "image", "write -P 0x41 0 2M");
        }),
        new("4 KiB clusters, compat 0.10", 4096, 8 << 20, d =>
            Qemu.Ok("qemu-img", d.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=4096", "image", "8M")),
        new("64 KiB clusters over a backing file (copy-on-write)", 65536, 4 << 20, d =>
        {
            Qemu.Ok("qemu-img", d.Path, "create", "-q", "-f", "qcow2", "base", "4M");
            Qemu.Io(d.Path, "base", "write -P 0x62 0 3M");
            Qemu.Ok("qemu-img", d.Path, "create", "-q", "-f", "qcow2", "-b", "base", "-F", "qcow2", "image", "4M");
        }),
        new("64 KiB clusters, compressed clusters overwritten", 65536, 4 << 20, d =>
        {
            Qemu.Ok("qemu-img", d.Path, "create", "-q", "-f", "qcow2", "image", "4M");
            Qemu.Io(d.Path, "image", "write -c -P 0x63 0 64k", "write -c -P 0x64 64k 64k", "write -c -P 0x65 1M 64k", "write -c -P 0x66 2M 64k", "write -c -P 0x67 3M 64k");
        }),
        new("4 KiB clusters, lazy refcounts, 1-bit refcounts", 4096, 4 << 20, d =>
            Qemu.Ok("qemu-img", d.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096,refcount_bits=1,lazy_refcounts=on", "image", "4M")),
        // The bitmaps are marked in use at open and stored anew at close: their data clusters,
        // tables and directory are allocated, and the ones they replace released.
        new("64 KiB clusters, persistent bitmaps kept current", 65536, 4 << 20, d =>
        {
            Qemu.Ok("qemu-img", d.Path, "create", "-q", "-f", "qcow2", "image", "4M");
            Qemu.Ok("qemu-img", d.Path, "bitmap", "--add", "image", "b0");
            Qemu.Ok("qemu-img", d.Path, "bitmap", "--add", "-g", "4k", "image", "fine");
            Qemu.Ok("qemu-img", d.Path, "bitmap", "--add", "--disable", "image", "off");
            Qemu.Io(d.Path, "image", "write -P 0x68 0 1M");
        }),
    ];

    private static int CutTarget =>
        int.TryParse(Environment.GetEnvironmentVariable("QCOW_CRASH_CUTS"), out int n) ? n : Qemu.UnderCi ? 10_000 : 1_500;

    /// <summary>What the guest did: an operation's storage events, and what it left in the range.</summary>
    private sealed record GuestOp(bool IsFlush, long Offset, byte[] After, int LastEvent);

    [OracleFact]
    public void EveryCutPoint_LeavesAConsistentImage_WithFlushedDataIntact()
    {
        int cuts = 0;
        int runs = 0;
        for (int seed = 1; cuts < CutTarget; seed++)
        {
            Workload w = s_workloads[seed % s_workloads.Length];
            cuts += Run(w, seed, failAt: -1);
            runs++;
        }

        string report = $"crash suite: {cuts} cut points in {runs} seeded workloads, no corruption, no flushed data lost";
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "crash-report.txt"), report + Environment.NewLine);
        Console.WriteLine(report);
        Assert.True(cuts >= CutTarget);
    }

    [OracleTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void InjectedIoError_ReachesTheCaller_AndLeavesAConsistentImage(int workload)
    {
        for (int seed = 100; seed < 106; seed++)
        {
            Run(s_workloads[workload], seed, failAt: 7 + seed * 13 % 90);
        }
    }

    /// <summary>
    /// The disk runs out of space at every write and flush of a seeded session in turn: once for
    /// good (from that event on, as a small tmpfs fills, each request that needs space the file
    /// does not hold fails) and once for that event alone. The failed request reports the
    /// system's error, the session goes on, and closing the image makes every request that
    /// succeeded durable: the image has no corruption (leaks allowed) by Qcow's check and
    /// qemu-img check, every completed request reads back, and a failed one's bytes are old or new.
    /// </summary>
    [OracleTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void FullDisk_AtEveryWriteAndFlush_FailsOnlyThatRequest_AndKeepsEveryCompletedOne(int workload)
    {
        Workload w = s_workloads[workload];
        int seed = 200 + workload;
        using var dir = new TempDir(ScratchRoot());
        w.Setup(dir);
        byte[] initial = File.ReadAllBytes(dir.File("image"));
        var checkedImages = new HashSet<string>();
        int events = RunOutOfSpace(w, seed, dir, initial, _ => { }, checkedImages).Events;

        // Every event under CI; every fifth while working, to keep the local run short.
        int stride = Qemu.UnderCi ? 1 : 5;
        int oneShotRuns = 0;
        int failures = 0;
        for (int at = 0; at < events; at += stride)
        {
            failures += RunOutOfSpace(w, seed, dir, initial, s => s.FullFrom = at, checkedImages).Failures;
            failures += RunOutOfSpace(w, seed, dir, initial, s => s.NoSpaceAt = at, checkedImages).Failures;
            oneShotRuns++;
        }

        Assert.True(failures >= oneShotRuns, $"{w}: {failures} requests failed in {oneShotRuns} sessions that each had one write or flush fail");
    }

    /// <summary>
    /// Runs one seeded session on a disk that <paramref name="fault"/> sets up; returns how many
    /// requests failed and how many storage events came before the image was closed.
    /// </summary>
    private static (int Failures, int Events) RunOutOfSpace(Workload w, int seed, TempDir dir, byte[] initial, Action<CrashStorage> fault, HashSet<string> checkedImages)
    {
        string path = dir.File("image");
        var storage = new CrashStorage(path, initial);
        fault(storage);
        var readSettings = new OpenSettings(false, false, 1 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default);
        BackingOpener backing = (name, format) => ImageOpener.Open(ImageOpener.ResolveBacking(path, name), format, readSettings);

        // expected: the bytes the completed requests left; lastDone: which request wrote each
        // last (-1: none); a failed request later than that may have left its own bytes there.
        byte[] expected = new byte[w.DiskSize];
        int[] lastDone = Enumerable.Repeat(-1, (int)w.DiskSize).ToArray();
        var failed = new List<(int Index, long Offset, long Length, byte[]? Data)>();
        int events = 0;
        using (QcowDevice before = QcowDevice.Open(new CrashStorage(path, initial, canWrite: false), new DeviceOptions(false, false, 1 << 20, NullLogger.Instance), backing))
        {
            before.Read(0, expected);
        }

        QcowDevice? opened = null;
        try
        {
            opened = QcowDevice.Open(storage, new DeviceOptions(true, false, 64 << 10, NullLogger.Instance), backing);
        }
        catch (IOException e) when (e.Message.StartsWith("No space left on device", StringComparison.Ordinal))
        {
            // The open's own writes (persistent bitmaps marked in use) found no space: the open
            // fails, as QEMU's does, and the image must be as valid as before.
            failed.Add((-1, 0, 0, null));
            events = storage.Events.Count;
        }

        if (opened is { } session)
        {
            var random = new Random(seed);
            for (int i = 0; i < 40; i++)
            {
                (long Offset, long Length, byte[]? Data) attempt = default;
                try
                {
                    GuestOp op = Step(session, storage, random, w, (offset, length, data) => attempt = (offset, length, data));
                    if (!op.IsFlush)
                    {
                        op.After.CopyTo(expected, op.Offset);
                        Array.Fill(lastDone, i, (int)op.Offset, op.After.Length);
                    }
                }
                catch (IOException e) when (e.Message.StartsWith("No space left on device", StringComparison.Ordinal))
                {
                    failed.Add((i, attempt.Offset, attempt.Length, attempt.Data));
                }
            }

            events = storage.Events.Count;
            try
            {
                session.Dispose();
            }
            catch (IOException e) when (e.Message.StartsWith("No space left on device", StringComparison.Ordinal))
            {
                // Storing the persistent bitmaps at close found no space: the close reports it,
                // having made every completed request durable all the same.
                failed.Add((40, 0, 0, null));
            }
        }

        string where = $"{w} seed {seed}, {storage.Events.Count(e => e.Kind == StorageEventKind.Failed)} failed events";
        byte[] image = RepairedIfDirty(path, storage.Contents);
        var reopened = new CrashStorage(path, image, canWrite: false);
        using (QcowDevice device = QcowDevice.Open(reopened, new DeviceOptions(false, false, 1 << 20, NullLogger.Instance), backing))
        {
            CheckReport report = ImageChecker.Check(reopened, QcowDevice.ReadHeader(reopened));
            Assert.True(report.Corruptions == 0, $"{where}: Qcow's check finds corruption: {string.Join("; ", report.Messages.Take(5))}");
            PersistentBitmaps.Load(reopened, QcowDevice.ReadHeader(reopened));
            byte[] actual = new byte[w.DiskSize];
            device.Read(0, actual);
            for (int i = 0; i < actual.Length; i++)
            {
                if (actual[i] != expected[i] && !failed.Any(f => f.Index > lastDone[i] && i >= f.Offset && i < f.Offset + f.Length && (f.Data is null || f.Data[i - f.Offset] == actual[i])))
                {
                    Assert.Fail($"{where}: guest byte {i} reads 0x{actual[i]:x2}, not the 0x{expected[i]:x2} a completed request left, nor a failed request's byte");
                }
            }
        }

        if (checkedImages.Add(Convert.ToHexString(SHA256.HashData(image))))
        {
            string file = dir.File("full");
            File.WriteAllBytes(file, image);
            QemuFindsNoCorruption(w, seed, -1, dir, file);
        }

        return (failed.Count, events);
    }

    internal static string ScratchRoot() => Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();

    /// <summary>Runs one seeded workload, then checks every cut point; returns how many.</summary>
    private static int Run(Workload w, int seed, int failAt)
    {
        using var dir = new TempDir(ScratchRoot());
        w.Setup(dir);
        string path = dir.File("image");
        var storage = new CrashStorage(path, File.ReadAllBytes(path)) { FailAt = failAt };
        var readSettings = new OpenSettings(false, false, 1 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default);
        BackingOpener backing = (name, format) => ImageOpener.Open(ImageOpener.ResolveBacking(path, name), format, readSettings);
        var options = new DeviceOptions(true, false, 64 << 10, NullLogger.Instance);

        var ops = new List<GuestOp>();
        byte[] initial = new byte[w.DiskSize];
        bool failed = false;
        var device = QcowDevice.Open(storage, options, backing);
        try
        {
            device.Read(0, initial);
            var random = new Random(seed);
            for (int i = 0; i < 40; i++)
            {
                ops.Add(Step(device, storage, random, w));
            }

            device.Dispose();
            ops.Add(new GuestOp(true, 0, [], storage.Events.Count - 1));
        }
        catch (IOException e) when (failAt >= 0 && e.Message.Contains("injected", StringComparison.Ordinal))
        {
            failed = true;
        }

        if (failAt >= 0)
        {
            Assert.True(failed || storage.Events.Count <= failAt, $"{w} seed {seed}: the injected error at event {failAt} did not reach the caller");
            CheckImage(w, seed, -1, path, storage.Events.Count == 0 ? File.ReadAllBytes(path) : storage.Cuts(_ => 0).Last().Image, initial, ops, int.MaxValue, backing);
            return 1;
        }

        var tear = new Random(seed * 7919);
        var seen = new HashSet<string>();
        var qemuChecks = new List<Task>();
        int cuts = 0;
        foreach ((int cut, byte[] image) in storage.Cuts(c => tear.Next(4) == 0 ? tear.Next(1, 9) : 0))
        {
            CheckImage(w, seed, cut, path, image, initial, ops, cut, backing);
            string hash = Convert.ToHexString(SHA256.HashData(image));
            if (seen.Add(hash))
            {
                string file = dir.File($"cut-{cut}");
                File.WriteAllBytes(file, image);
                qemuChecks.Add(Task.Run(() => QemuFindsNoCorruption(w, seed, cut, dir, file)));
                if (qemuChecks.Count >= 2)
                {
                    Task.WaitAll(qemuChecks.ToArray());
                    qemuChecks.Clear();
                }
            }

            cuts++;
        }

        Task.WaitAll(qemuChecks.ToArray());
        return cuts;
    }

    /// <summary>
    /// One guest operation, chosen by the seed; flushes are a fifth of them. <paramref name="starting"/>
    /// hears of a change before it is made: its range and the bytes it writes (null for a discard).
    /// </summary>
    private static GuestOp Step(QcowDevice device, CrashStorage storage, Random random, Workload w, Action<long, long, byte[]?>? starting = null)
    {
        int cs = w.ClusterSize;
        int kind = random.Next(10);
        if (kind < 2)
        {
            device.Flush();
            return new GuestOp(true, 0, [], storage.Events.Count - 1);
        }

        long offset = random.Next(4) == 0 ? random.NextInt64(w.DiskSize / cs) * cs : random.NextInt64(w.DiskSize - 1);
        long length = Math.Min(w.DiskSize - offset, random.Next(3) == 0 ? random.Next(1, 48 * cs) : random.Next(1, 3 * cs));
        long clusterStart = offset / cs * cs;
        if (kind == 5 && device.Layout.Version >= 2 && clusterStart + cs <= w.DiskSize && MayCompress(device.Status(clusterStart, cs)))
        {
            // A compressed cluster of half noise, half a repeating pattern, packed after the last.
            byte[] cluster = new byte[cs];
            random.NextBytes(cluster.AsSpan(0, cs / 2));
            cluster.AsSpan(cs / 2).Fill((byte)random.Next(256));
            (offset, length) = (clusterStart, cs);
            starting?.Invoke(offset, length, cluster);
            device.WriteCompressed(clusterStart, cluster);
        }
        else if (kind < 6)
        {
            byte[] data = new byte[length];
            random.NextBytes(data);
            starting?.Invoke(offset, length, data);
            device.Write(offset, data);
        }
        else if (kind < 8)
        {
            starting?.Invoke(offset, length, new byte[length]);
            device.WriteZeroes(offset, length);
        }
        else
        {
            starting?.Invoke(offset, length, null);
            device.Discard(offset, length);
        }

        byte[] after = new byte[length];
        device.Read(offset, after);
        return new GuestOp(false, offset, after, storage.Events.Count - 1);
    }

    /// <summary>A compressed write goes only where the image itself allocates nothing (it may be a zero cluster).</summary>
    private static bool MayCompress(BlockStatus s) => s.Depth > 0 || !s.Present || (s.Zero && !s.HasOffset);

    /// <summary>
    /// Checks a cut image: it opens; Qcow's check finds no corruption; each guest byte is what the
    /// last completed flush left, or what a later operation wrote there.
    /// </summary>
    private static void CheckImage(Workload w, int seed, int cut, string path, byte[] image, byte[] initial, List<GuestOp> ops, int cutEvent, BackingOpener backing)
    {
        string where = $"{w} seed {seed} cut {cut}";
        image = RepairedIfDirty(path, image);
        var storage = new CrashStorage(path, image, canWrite: false);
        using QcowDevice device = QcowDevice.Open(storage, new DeviceOptions(false, false, 1 << 20, NullLogger.Instance), backing);
        CheckReport report = ImageChecker.Check(storage, QcowDevice.ReadHeader(storage));
        Assert.True(report.Corruptions == 0, $"{where}: Qcow's check finds corruption: {string.Join("; ", report.Messages.Take(5))}");

        // Persistent bitmaps are valid, or invalid as a whole (in use, or their autoclear bit clear), never broken.
        PersistentBitmaps.Load(storage, QcowDevice.ReadHeader(storage));

        // The guest state at the last flush that completed before the cut, and what came after.
        byte[] durable = (byte[])initial.Clone();
        int lastFlush = ops.FindLastIndex(o => o.IsFlush && o.LastEvent <= cutEvent);
        for (int i = 0; i <= lastFlush; i++)
        {
            if (!ops[i].IsFlush)
            {
                ops[i].After.CopyTo(durable, ops[i].Offset);
            }
        }

        var pending = ops.Skip(lastFlush + 1).Where(o => !o.IsFlush).ToList();
        byte[] actual = new byte[durable.Length];
        device.Read(0, actual);
        for (int i = 0; i < actual.Length; i++)
        {
            if (actual[i] != durable[i] && !pending.Any(o => i >= o.Offset && i < o.Offset + o.After.Length && o.After[i - o.Offset] == actual[i]))
            {
                Assert.Fail($"{where}: guest byte {i} reads 0x{actual[i]:x2}, neither the flushed 0x{durable[i]:x2} nor anything written after");
            }
        }
    }

    /// <summary>
    /// A cut under lazy refcounts leaves a dirty image whose refcounts are stale by design: it is
    /// repaired first, as QEMU's read-write open (and Qcow's) repairs it, and then judged.
    /// </summary>
    internal static byte[] RepairedIfDirty(string path, byte[] image)
    {
        var storage = new CrashStorage(path, image);
        Header header = QcowDevice.ReadHeader(storage);
        if (!HeaderModule.isDirty(header))
        {
            return image;
        }

        ImageChecker.Repair(storage, header, RefcountCheck.Repair.All);
        return storage.Contents;
    }

    /// <summary>qemu-img check finds no corruption; a dirty image (lazy refcounts) is judged after qemu-img check -r all, which QEMU's open would run.</summary>
    private static void QemuFindsNoCorruption(Workload w, int seed, int cut, TempDir dir, string file)
    {
        var header = new CrashStorage(file, File.ReadAllBytes(file), canWrite: false);
        string[] repair = HeaderModule.isDirty(QcowDevice.ReadHeader(header)) ? ["-r", "all"] : [];
        var (code, stdout, stderr) = Qemu.Run("qemu-img", dir.Path, ["check", .. repair, "--output=json", Path.GetFileName(file)]);
        Assert.True(code is 0 or 3, $"{w} seed {seed} cut {cut}: qemu-img check exited {code}: {stderr}{stdout}");
        using JsonDocument json = JsonDocument.Parse(stdout);
        Assert.False(json.RootElement.TryGetProperty("corruptions", out _), $"{w} seed {seed} cut {cut}: {stdout}");
        Assert.Equal(0, json.RootElement.GetProperty("check-errors").GetInt32());
        File.Delete(file);
    }
}
