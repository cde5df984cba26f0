// Crash consistency of snapshot changes: seeded sessions of guest writes and snapshot create,
// apply and delete run on CrashStorage; the power is then cut after every write and flush of each
// snapshot change in turn (the last write sometimes torn). After each cut the image is the one
// from before the change or the one after it, whole: the same snapshots, each reading as it did,
// the same active data, and neither Qcow's check nor qemu-img check finds a corruption or a leak.
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

public sealed class SnapshotCrashTests
{
    /// <summary>An image's guest-visible history: its snapshots (ID, name, content hash, one line each) and its active data's hash.</summary>
    private sealed record State(string Snapshots, string Active)
    {
        public override string ToString() => $"snapshots [{Snapshots}]";
    }

    /// <summary>One snapshot change: the events it made, and the states on either side.</summary>
    private sealed record Change(string What, int FirstEvent, int LastEvent, State Before, State After);

    private sealed record Workload(string Name, int ClusterSize, string Options)
    {
        public override string ToString() => Name;
    }

    private static readonly Workload[] s_workloads =
    [
        new("64 KiB clusters", 65536, "cluster_size=65536"),
        new("4 KiB clusters, compat 0.10", 4096, "compat=0.10,cluster_size=4096"),
        new("512 B clusters, 8-bit refcounts (refcount blocks and table grow)", 512, "cluster_size=512,refcount_bits=8"),
    ];

    private const long DiskSize = 4 << 20;

    private static int CutTarget =>
        int.TryParse(Environment.GetEnvironmentVariable("QCOW_SNAPSHOT_CRASH_CUTS"), out int n) ? n : Qemu.UnderCi ? 2_500 : 300;

    [OracleFact]
    public void EveryCutPoint_OfASnapshotChange_LeavesTheImageBeforeOrAfterIt()
    {
        int cuts = 0;
        int changes = 0;
        for (int seed = 1; cuts < CutTarget; seed++)
        {
            (int c, int n) = Run(s_workloads[seed % s_workloads.Length], seed);
            cuts += c;
            changes += n;
        }

        string report = $"snapshot crash suite: {cuts} cut points in {changes} snapshot changes, each image before or after its change, no corruption, no leak";
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "snapshot-crash-report.txt"), report + Environment.NewLine);
        Console.WriteLine(report);
        Assert.True(cuts >= CutTarget);
    }

    /// <summary>Runs one seeded session, then checks every cut inside its snapshot changes; returns the cuts and the changes.</summary>
    private static (int Cuts, int Changes) Run(Workload w, int seed)
    {
        using var dir = new TempDir(CrashTests.ScratchRoot());
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", w.Options, "image", DiskSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Qemu.Io(dir.Path, "image", $"write -P 0x41 0 {DiskSize / 2}", $"write -c -P 0x42 {DiskSize / 2} {w.ClusterSize}");
        string path = dir.File("image");
        var storage = new CrashStorage(path, File.ReadAllBytes(path));
        var random = new Random(seed);
        var changes = new List<Change>();
        State state = Read(storage.Contents, path);
        for (int step = 0; step < 6; step++)
        {
            GuestWrites(storage, random, w);
            state = Read(storage.Contents, path);
            int first = storage.Events.Count;
            string what;
            int choice = random.Next(6);
            if (Ids(state).Length == 0 || choice < 3)
            {
                what = $"create s{step}";
                SnapshotEditor.Create(storage, $"s{step}", DateTimeOffset.FromUnixTimeSeconds(1_700_000_000 + step), NullLogger.Instance);
            }
            else if (choice < 5)
            {
                string id = Ids(state)[random.Next(Ids(state).Length)];
                what = $"apply {id}";
                SnapshotEditor.Apply(storage, id, NullLogger.Instance);
            }
            else
            {
                string id = Ids(state)[random.Next(Ids(state).Length)];
                what = $"delete {id}";
                SnapshotEditor.Delete(storage, id, NullLogger.Instance);
            }

            State after = Read(storage.Contents, path);
            changes.Add(new Change(what, first, storage.Events.Count - 1, state, after));
            state = after;
        }

        var tear = new Random(seed * 7919);
        var seen = new HashSet<string>();
        int cuts = 0;
        foreach ((int cut, byte[] image) in storage.Cuts(c => tear.Next(4) == 0 ? tear.Next(1, 9) : 0))
        {
            if (changes.FirstOrDefault(c => cut >= c.FirstEvent && cut <= c.LastEvent) is not { } change)
            {
                continue;
            }

            string where = $"{w} seed {seed}, {change.What}, cut {cut}";
            State found = Read(image, path);
            Assert.True(found == change.Before || found == change.After, $"{where}: the image holds {found}, neither the {change.Before} before nor the {change.After} after");
            if (seen.Add(Convert.ToHexString(SHA256.HashData(image))))
            {
                AssertClean(where, dir, image);
            }

            cuts++;
        }

        return (cuts, changes.Count);
    }

    /// <summary>A few guest writes, zero writes and discards through a read-write open, closed (so flushed) at the end.</summary>
    private static void GuestWrites(CrashStorage storage, Random random, Workload w)
    {
        using var device = QcowDevice.Open(storage, new DeviceOptions(true, false, 1 << 20, NullLogger.Instance), (_, _) => null);
        for (int i = 0; i < 4; i++)
        {
            long offset = random.NextInt64(DiskSize - 1);
            long length = Math.Min(DiskSize - offset, random.Next(1, 6 * w.ClusterSize));
            switch (random.Next(4))
            {
                case 0:
                    device.WriteZeroes(offset, length);
                    break;
                case 1:
                    device.Discard(offset, length);
                    break;
                default:
                    byte[] data = new byte[length];
                    random.NextBytes(data);
                    device.Write(offset, data);
                    break;
            }
        }
    }

    /// <summary>What an image holds, read through Qcow: each snapshot's content and the active content, as hashes.</summary>
    private static State Read(byte[] image, string path)
    {
        var storage = new CrashStorage(path, image, canWrite: false);
        string active;
        IReadOnlyList<Snapshot> snapshots;
        using (QcowDevice device = QcowDevice.Open(storage, new DeviceOptions(false, false, 1 << 20, NullLogger.Instance), (_, _) => null))
        {
            active = Content(device);
            snapshots = device.Snapshots;
        }

        var taken = new List<string>();
        foreach (Snapshot s in snapshots)
        {
            using QcowDevice device = QcowDevice.Open(storage, new DeviceOptions(false, false, 1 << 20, NullLogger.Instance, Snapshot: new SnapshotChoice(s.Id, null)), (_, _) => null);
            taken.Add($"{s.Id} {s.Name} {Content(device)[..16]}");
        }

        return new State(string.Join(", ", taken), active);
    }

    private static string[] Ids(State state) => state.Snapshots.Length == 0 ? [] : [.. state.Snapshots.Split(", ").Select(s => s.Split(' ')[0])];

    private static string Content(QcowDevice device)
    {
        byte[] bytes = new byte[device.Length];
        device.Read(0, bytes);
        return Convert.ToHexString(SHA256.HashData(bytes));
    }

    /// <summary>Qcow's check and qemu-img check find neither corruption nor leak.</summary>
    private static void AssertClean(string where, TempDir dir, byte[] image)
    {
        var storage = new CrashStorage(dir.File("image"), image, canWrite: false);
        CheckReport report = ImageChecker.Check(storage, QcowDevice.ReadHeader(storage));
        Assert.True(report.Corruptions == 0 && report.Leaks == 0, $"{where}: Qcow's check finds {report.Corruptions} corruptions, {report.Leaks} leaks: {string.Join("; ", report.Messages.Take(5))}");

        string file = dir.File("cut");
        File.WriteAllBytes(file, image);
        var (code, stdout, stderr) = Qemu.Run("qemu-img", dir.Path, "check", "--output=json", "cut");
        Assert.True(code == 0, $"{where}: qemu-img check exited {code}: {stderr}{stdout}");
        using JsonDocument json = JsonDocument.Parse(stdout);
        Assert.False(json.RootElement.TryGetProperty("corruptions", out _), $"{where}: {stdout}");
        Assert.False(json.RootElement.TryGetProperty("leaks", out _), $"{where}: {stdout}");
        File.Delete(file);
    }
}
