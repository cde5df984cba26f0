// Persistent dirty bitmaps against QEMU, both ways. Twins made by qemu-img get the same seeded
// writes, zero writes and discards and the same qemu-img bitmap operations, one through QEMU's
// tools, the other through Qcow; QEMU itself then reads each twin's bitmaps (qemu-nbd exports
// them, qemu-img map shows their dirty runs) and must find them equal, the Qcow twin must pass
// qemu-img check, and Qcow must read in QEMU's twin the runs QEMU reads there.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class BitmapTests
{
    private static readonly string[] s_bitmaps = ["b0", "fine", "off", "merged"];

    [OracleFact]
    public void BitmapsQemuWrote_AreListedAndCounted_AsQemuListsAndCountsThem()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "b.qcow2", "16M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "b.qcow2", "first");
        Qemu.Io(dir.Path, "b.qcow2", "write -P 1 0 1M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "-g", "128k", "--disable", "b.qcow2", "second");
        string image = dir.File("b.qcow2");

        foreach (string[] args in new[] { new[] { "info", image }, ["info", "--output=json", image], ["check", image], ["check", "--output=json", image] })
        {
            var theirs = Qemu.Run("qemu-img", dir.Path, args);
            var stdout = new StringWriter();
            Assert.Equal(theirs.ExitCode, Cli.Cli.Run(args, stdout, new StringWriter()));
            Assert.Equal(theirs.Stdout, stdout.ToString());
        }
    }

    [OracleTheory]
    [InlineData(1, 65536)]
    [InlineData(2, 4096)]
    [InlineData(3, 65536)]
    public void SeededWritesAndBitmapOperations_LeaveTheBitmapsQemuLeaves(int seed, int clusterSize)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"cluster_size={clusterSize}", "theirs.qcow2", "8M");
        Qemu.Io(dir.Path, "theirs.qcow2", "write -P 7 1M 200k");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "theirs.qcow2", "b0");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "-g", "4k", "theirs.qcow2", "fine");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "--disable", "theirs.qcow2", "off");
        Qemu.Io(dir.Path, "theirs.qcow2", "write -P 8 6M 64k");
        File.Copy(dir.File("theirs.qcow2"), dir.File("ours.qcow2"));

        var random = new Random(seed);
        for (int round = 0; round < 3; round++)
        {
            string[] ops = [.. Enumerable.Range(0, 12).Select(_ => RandomOp(random))];
            Qemu.Io(dir.Path, "theirs.qcow2", ops);
            using (QcowImage ours = QcowImage.Open(dir.File("ours.qcow2")))
            {
                foreach (string op in ops)
                {
                    Apply(ours, op);
                }
            }

            string[][] changes = round switch
            {
                0 => [["--disable", "fine"], ["--enable", "off"]],
                1 => [["--add", "-g", "512", "--disable", "--merge", "b0", "merged"], ["--clear", "b0"]],
                _ => [["--enable", "fine"], ["--merge", "fine", "merged"], ["--disable", "off"]],
            };
            foreach (string[] change in changes)
            {
                string[] args = ["bitmap", .. change[..^1]];
                Qemu.Ok("qemu-img", dir.Path, [.. args, "theirs.qcow2", change[^1]]);
                var (code, _, stderr) = CliTests.QcowTool.Run([.. args, dir.File("ours.qcow2"), change[^1]]);
                Assert.True(code == 0, stderr);
            }
        }

        Qemu.AssertClean(dir.Path, "ours.qcow2");
        Assert.Equal(Bitmaps(dir, "theirs.qcow2"), Bitmaps(dir, "ours.qcow2"));
        Assert.Equal(Qemu.RawBytes(dir.Path, "theirs.qcow2"), Qemu.RawBytes(dir.Path, "ours.qcow2"));
        using QcowImage reading = QcowImage.Open(dir.File("theirs.qcow2"), new QcowOpenOptions { ReadOnly = true });
        foreach (string name in s_bitmaps)
        {
            List<QcowDirtyExtent> qemuReadsTheirs = QemuDirtyRuns(dir, "theirs.qcow2", name);
            Assert.Equal(qemuReadsTheirs, QemuDirtyRuns(dir, "ours.qcow2", name));
            Assert.Equal(qemuReadsTheirs, reading.DirtyExtents(name).ToList());
        }
    }

    [OracleFact]
    public void BitmapLeftInUse_IsKeptAsItIs_RefusedForUse_AndRemovable_AsQemuDoes()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "u.qcow2", "4M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "u.qcow2", "stale");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "u.qcow2", "good");
        Qemu.Io(dir.Path, "u.qcow2", "write 0 64k");
        SetInUse(dir.File("u.qcow2"), "stale");

        var (code, _, stderr) = CliTests.QcowTool.Run("bitmap", "--clear", dir.File("u.qcow2"), "stale");
        Assert.Equal(1, code);
        Assert.Contains("Operation clear on bitmap stale failed: Bitmap 'stale' is inconsistent and cannot be used", stderr);
        using (QcowImage image = QcowImage.Open(dir.File("u.qcow2")))
        {
            image.Write(1 << 20, new byte[512]);
            Assert.Throws<InvalidOperationException>(() => image.MergeBitmap("good", "stale"));
            Assert.Equal([true, false], image.Bitmaps.Select(b => b.InUse));
        }

        string info = Qemu.Ok("qemu-img", dir.Path, "info", "u.qcow2");
        Assert.Contains("[0]: in-use", info);
        Qemu.AssertClean(dir.Path, "u.qcow2");
        Assert.Equal([(0L, 65536L), (1L << 20, 65536L)], QemuDirtyRuns(dir, "u.qcow2", "good").Select(e => (e.Offset, e.Length)));

        Assert.Equal(0, CliTests.QcowTool.Run("bitmap", "--remove", dir.File("u.qcow2"), "stale").Code);
        Qemu.AssertClean(dir.Path, "u.qcow2");
        Assert.DoesNotContain("stale", Qemu.Ok("qemu-img", dir.Path, "info", "u.qcow2"));
    }

    [OracleFact]
    public void ConvertWithBitmaps_CopiesWhatQemuCopies_AndRefusesOrSkipsABitmapLeftInUse()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "4M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "base.qcow2", "below");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "src.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "-g", "8k", "src.qcow2", "b0");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "--disable", "src.qcow2", "b1");
        Qemu.Io(dir.Path, "src.qcow2", "write -P 3 100k 300k", "write -z 2M 64k");

        Qemu.Ok("qemu-img", dir.Path, "convert", "--bitmaps", "-O", "qcow2", "src.qcow2", "theirs.qcow2");
        var (code, _, stderr) = CliTests.QcowTool.Run("convert", "--bitmaps", "-O", "qcow2", dir.File("src.qcow2"), dir.File("ours.qcow2"));
        Assert.True(code == 0, stderr);
        Qemu.AssertClean(dir.Path, "ours.qcow2");
        Assert.Equal(Bitmaps(dir, "theirs.qcow2"), Bitmaps(dir, "ours.qcow2"));
        Assert.Equal(QemuDirtyRuns(dir, "theirs.qcow2", "b0"), QemuDirtyRuns(dir, "ours.qcow2", "b0"));

        SetInUse(dir.File("src.qcow2"), "b1");
        foreach (string[] flags in new[] { new[] { "--skip-broken-bitmaps" }, ["--bitmaps"], ["--bitmaps", "--skip-broken-bitmaps"] })
        {
            File.Delete(dir.File("theirs.qcow2"));
            File.Delete(dir.File("ours.qcow2"));
            var theirs = Qemu.Run("qemu-img", dir.Path, ["convert", .. flags, "-O", "qcow2", "src.qcow2", "theirs.qcow2"]);
            var ours = CliTests.QcowTool.RunIn(dir.Path, ["convert", .. flags, "-O", "qcow2", "src.qcow2", "ours.qcow2"]);
            Assert.Equal(theirs.ExitCode, ours.Code);
            Assert.Equal(theirs.Stderr.Replace("qemu-img:", "qcow:", StringComparison.Ordinal), ours.Stderr);
            Assert.Equal(File.Exists(dir.File("theirs.qcow2")), File.Exists(dir.File("ours.qcow2")));
        }

        Assert.Equal(Bitmaps(dir, "theirs.qcow2"), Bitmaps(dir, "ours.qcow2"));
    }

    [OracleFact]
    public void ResizeSnapshotsAndAmend_KeepTheBitmaps_AsQemuKeepsThem()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "theirs.qcow2", "8M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "theirs.qcow2", "b0");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "-g", "4k", "--disable", "theirs.qcow2", "b1");
        Qemu.Io(dir.Path, "theirs.qcow2", "write -P 5 0 100k", "write -P 6 6M 1M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--enable", "theirs.qcow2", "b1");
        Qemu.Io(dir.Path, "theirs.qcow2", "write -P 7 7M 4k");
        File.Copy(dir.File("theirs.qcow2"), dir.File("ours.qcow2"));

        string[][] steps =
        [
            ["resize", "IMG", "20M"],
            ["snapshot", "-c", "s1", "IMG"],
            ["resize", "--shrink", "IMG", "6500k"],
            ["snapshot", "-a", "s1", "IMG"],
            ["snapshot", "-d", "s1", "IMG"],
            ["amend", "-o", "lazy_refcounts=on", "IMG"],
            ["amend", "-o", "refcount_bits=8", "IMG"],
        ];
        foreach (string[] step in steps)
        {
            var theirs = Qemu.Run("qemu-img", dir.Path, [.. step.Select(a => a == "IMG" ? "theirs.qcow2" : a)]);
            var ours = CliTests.QcowTool.RunIn(dir.Path, [.. step.Select(a => a == "IMG" ? "ours.qcow2" : a)]);
            Assert.Equal(theirs.ExitCode, ours.Code);
            Assert.Equal(theirs.Stderr.Replace("qemu-img:", "qcow:", StringComparison.Ordinal), ours.Stderr);
            Qemu.AssertClean(dir.Path, "ours.qcow2");
            Assert.Equal(Bitmaps(dir, "theirs.qcow2"), Bitmaps(dir, "ours.qcow2"));
            foreach (string name in new[] { "b0", "b1" })
            {
                Assert.Equal(QemuDirtyRuns(dir, "theirs.qcow2", name), QemuDirtyRuns(dir, "ours.qcow2", name));
            }
        }

        // A downgrade to compat 0.10, which cannot hold bitmaps, drops them whole (QEMU leaves their clusters leaked).
        Assert.Equal(0, CliTests.QcowTool.Run("amend", "-o", "compat=0.10,refcount_bits=16,lazy_refcounts=off", dir.File("ours.qcow2")).Code);
        Qemu.AssertClean(dir.Path, "ours.qcow2");
        Assert.DoesNotContain("bitmaps", Qemu.Ok("qemu-img", dir.Path, "info", "ours.qcow2"));
        Assert.Equal(Qemu.RawBytes(dir.Path, "theirs.qcow2"), Qemu.RawBytes(dir.Path, "ours.qcow2"));
    }

    [Fact]
    public void ReopenedAgainAndAgain_BitmapsHoldEveryChange_AsAModelOfDirtyGranules()
    {
        using var dir = new TempDir();
        string path = dir.File("m.qcow2");
        QcowImage.Create(path, new QcowCreateOptions { Size = 4 << 20, ClusterSize = 4096 }).Dispose();
        var random = new Random(11);
        var model = new Dictionary<string, (int Bits, bool Enabled, HashSet<long> Dirty)>();
        for (int open = 0; open < 8; open++)
        {
            using QcowImage image = QcowImage.Open(path);
            foreach (var (name, m) in model)
            {
                Assert.Equal(Runs(m.Dirty, m.Bits, image.Length), image.DirtyExtents(name).ToList());
            }

            for (int i = 0; i < 20; i++)
            {
                int choice = random.Next(10);
                if (choice == 0 && model.Count < 4)
                {
                    string name = $"m{open}{i}";
                    int bits = random.Next(9, 17);
                    bool enabled = random.Next(3) > 0;
                    image.AddBitmap(name, new QcowBitmapOptions { Granularity = 1L << bits, Disabled = !enabled });
                    model[name] = (bits, enabled, []);
                }
                else if (choice == 1 && model.Count > 0)
                {
                    string name = model.Keys.ElementAt(random.Next(model.Count));
                    bool enabled = !model[name].Enabled;
                    (enabled ? (Action<string>)image.EnableBitmap : image.DisableBitmap)(name);
                    model[name] = model[name] with { Enabled = enabled };
                }
                else
                {
                    long offset = random.NextInt64(image.Length);
                    long length = Math.Min(image.Length - offset, random.Next(1, 200_000));
                    if (choice == 2)
                    {
                        image.WriteZeroes(offset, length);
                    }
                    else
                    {
                        image.Write(offset, new byte[length]);
                    }

                    foreach (var m in model.Values.Where(m => m.Enabled))
                    {
                        for (long g = offset >> m.Bits; g <= (offset + length - 1) >> m.Bits; g++)
                        {
                            m.Dirty.Add(g);
                        }
                    }
                }
            }
        }
    }

    /// <summary>Dirty runs of a granule set, as contiguous extents cut at the disk's end.</summary>
    private static List<QcowDirtyExtent> Runs(HashSet<long> dirty, int bits, long size)
    {
        var runs = new List<QcowDirtyExtent>();
        foreach (long g in dirty.Order())
        {
            long start = g << bits;
            long end = Math.Min(size, (g + 1) << bits);
            if (runs.Count > 0 && runs[^1].Offset + runs[^1].Length == start)
            {
                runs[^1] = runs[^1] with { Length = end - runs[^1].Offset };
            }
            else
            {
                runs.Add(new QcowDirtyExtent(start, end - start));
            }
        }

        return runs;
    }

    private static string RandomOp(Random random)
    {
        long offset = random.NextInt64(8 << 20) & ~511L;
        long length = Math.Min((8 << 20) - offset, (random.Next(1, 300) * 512L));
        return random.Next(4) switch
        {
            0 => $"write -z {offset} {length}",
            1 => $"discard {offset} {length}",
            _ => $"write -P {random.Next(1, 255)} {offset} {length}",
        };
    }

    /// <summary>One qemu-io command of <see cref="RandomOp"/> through the API.</summary>
    private static void Apply(QcowImage image, string op)
    {
        string[] words = op.Split(' ');
        long offset = long.Parse(words[^2]);
        long length = long.Parse(words[^1]);
        switch (words[1])
        {
            case "-z":
                image.WriteZeroes(offset, length);
                break;
            case "-P":
                image.Write(offset, Enumerable.Repeat(byte.Parse(words[2]), (int)length).ToArray());
                break;
            default:
                image.Discard(offset, length);
                break;
        }
    }

    /// <summary>What qemu-img info says of an image's bitmaps: names, granularities, flags.</summary>
    private static string Bitmaps(TempDir dir, string image)
    {
        using JsonDocument info = JsonDocument.Parse(Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", image));
        return info.RootElement.GetProperty("format-specific").GetProperty("data").GetProperty("bitmaps").GetRawText();
    }

    /// <summary>
    /// The dirty runs of a bitmap as QEMU reads it: qemu-nbd exports it and qemu-img map reports
    /// its set bits as runs without data (QEMU's x-dirty-bitmap hook, as its own tests read bitmaps).
    /// </summary>
    private static List<QcowDirtyExtent> QemuDirtyRuns(TempDir dir, string image, string bitmap)
    {
        string socket = dir.File($"{bitmap}.sock");
        string pidFile = dir.File($"{bitmap}.pid");
        Qemu.Ok("qemu-nbd", dir.Path, "-r", "-f", "qcow2", "-B", bitmap, "-k", socket, "--fork", "--pid-file", pidFile, image);
        try
        {
            string map = Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "--image-opts", $"driver=nbd,server.type=unix,server.path={socket},x-dirty-bitmap=qemu:dirty-bitmap:{bitmap}");
            using JsonDocument runs = JsonDocument.Parse(map);
            return [.. runs.RootElement.EnumerateArray()
                .Where(r => !r.GetProperty("data").GetBoolean())
                .Select(r => new QcowDirtyExtent(r.GetProperty("start").GetInt64(), r.GetProperty("length").GetInt64()))];
        }
        finally
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid))
            {
                try
                {
                    System.Diagnostics.Process.GetProcessById(pid).Kill();
                }
                catch (ArgumentException)
                {
                    // It had exited when its client left.
                }
            }
        }
    }

    /// <summary>Sets a bitmap's in-use flag by hand, as a crash while QEMU had the image open leaves it.</summary>
    private static void SetInUse(string path, string name)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        byte[] header = new byte[65536];
        file.ReadExactly(header);
        int ext = header.AsSpan().IndexOf(new byte[] { 0x23, 0x85, 0x28, 0x75 });
        ulong size = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(ext + 16));
        long offset = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(ext + 24));
        byte[] directory = new byte[size];
        file.Position = offset;
        file.ReadExactly(directory);
        for (int at = 0; at < directory.Length;)
        {
            int nameSize = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(directory.AsSpan(at + 18));
            if (System.Text.Encoding.UTF8.GetString(directory, at + 24, nameSize) == name)
            {
                directory[at + 15] |= 1;
            }

            at += (24 + nameSize + 7) & ~7;
        }

        file.Position = offset;
        file.Write(directory);
    }
}
