// qcow check against qemu-img check: for each class of corruption made by editing bytes, the same
// report (JSON text, human text, messages, exit code), and a repair (-r leaks, -r all) that does
// what qemu-img's does: the same output, and the same file, clusters QEMU hands back to the file
// system aside. Where qemu-img's repair fails, ours leaves the image clean with its data intact.
using System;
using System.Buffers.Binary;
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class CheckCommandTests
{
    private const ulong Copied = 1UL << 63;
    private const int ClusterSize = 65536;

    /// <summary>An edit of the test image's first L1 entry, L2 entry or refcount table; whether qemu-img's repair of it fails.</summary>
    public sealed record Corruption(string Name, Action<byte[], long, long> Edit, bool QemuRepairFails = false)
    {
        public override string ToString() => Name;
    }

    private static readonly Corruption[] AllCorruptions =
    [
        new("L2 COPIED flag cleared", (b, l1, l2) => Set(b, l2, Get(b, l2) & ~Copied)),
        new("L1 COPIED flag cleared", (b, l1, l2) => Set(b, l1, Get(b, l1) & ~Copied)),
        new("L2 reserved bits", (b, l1, l2) => Set(b, l2, Get(b, l2) | (1UL << 56) | 2)),
        new("L1 reserved bits", (b, l1, l2) => Set(b, l1, Get(b, l1) | (1UL << 60))),
        new("L2 entry past the end of the file", (b, l1, l2) => Set(b, l2, Copied | 0x10000000)),
        new("L2 entry misaligned", (b, l1, l2) => Set(b, l2, Get(b, l2) + 0x200)),
        new("L1 entry past the end of the file", (b, l1, l2) => Set(b, l1, Copied | 0x10000000)),
        new("L1 entry misaligned", (b, l1, l2) => Set(b, l1, Get(b, l1) + 0x200)),
        new("data cluster on a refcount block", (b, l1, l2) => Set(b, l2, Copied | Get(b, (long)Get(b, 48)))),
        new("refcount too low", (b, l1, l2) => BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(0x20000 + 5 * 2), 0)),
        new("refcount too low, not zero (a cluster mapped twice)", (b, l1, l2) => Set(b, l2 + 8 * 3, Get(b, l2))),
        new("refcount too high (leak)", (b, l1, l2) => BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(0x20000 + 6 * 2), 2)),
        new("leak and L1 COPIED flag cleared", (b, l1, l2) =>
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(0x20000), 2);
            Set(b, l1, Get(b, l1) & ~Copied);
        }),
        // qemu-img marks the image corrupt when it meets the block, and its rebuild (-r all) then fails.
        new("refcount table entry misaligned", (b, l1, l2) => Set(b, (long)Get(b, 48), Get(b, (long)Get(b, 48)) + 0x200), QemuRepairFails: true),
        new("compressed cluster with COPIED", (b, l1, l2) => Set(b, l2 + 8 * 2, Get(b, l2 + 8 * 2) | Copied)),
    ];

    public static TheoryData<Corruption> Corruptions => new(AllCorruptions);

    public static TheoryData<Corruption, string> Repairs
    {
        get
        {
            var data = new TheoryData<Corruption, string>();
            foreach (Corruption corruption in AllCorruptions)
            {
                data.Add(corruption, "leaks");
                data.Add(corruption, "all");
            }

            return data;
        }
    }

    /// <summary>The test image: data, compressed and sparse clusters under one L2 table; its L1 and L2 table offsets.</summary>
    private static (byte[] Image, long L1, long L2) TestImage(TempDir dir)
    {
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "16M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 1 0 64k", "write -P 2 64k 64k", "write -c -P 3 128k 64k", "write -P 4 1M 64k");
        byte[] image = File.ReadAllBytes(dir.File("base.qcow2"));
        long l1 = (long)Get(image, 40);
        long l2 = (long)(Get(image, l1) & ~Copied & 0x00fffffffffffe00);
        return (image, l1, l2);
    }

    [OracleTheory]
    [MemberData(nameof(Corruptions))]
    public void Check_ReportsWhatQemuImgReports(Corruption corruption)
    {
        using var dir = new TempDir();
        (byte[] image, long l1, long l2) = TestImage(dir);
        corruption.Edit(image, l1, l2);
        File.WriteAllBytes(dir.File("c.qcow2"), image);

        foreach (string output in new[] { "json", "human" })
        {
            var theirs = Qemu.Run("qemu-img", dir.Path, "check", $"--output={output}", "c.qcow2");
            var (code, stdout, stderr) = Run("check", $"--output={output}", dir.File("c.qcow2"));
            Assert.Equal(theirs.ExitCode, code);
            Assert.Equal(theirs.Stdout, stdout.Replace(dir.File("c.qcow2"), "c.qcow2"));
            Assert.Equal(theirs.Stderr.Replace("qemu-img: ", "qcow: "), stderr);
        }
    }

    [OracleTheory]
    [MemberData(nameof(Repairs))]
    public void Repair_DoesWhatQemuImgsRepairDoes(Corruption corruption, string mode)
    {
        using var dir = new TempDir();
        (byte[] image, long l1, long l2) = TestImage(dir);
        byte[] before = Qemu.RawBytes(dir.Path, "base.qcow2");
        corruption.Edit(image, l1, l2);

        if (corruption.QemuRepairFails && mode == "all")
        {
            File.WriteAllBytes(dir.File("c.qcow2"), image);
            var repair = Run("check", "-r", mode, dir.File("c.qcow2"));
            Assert.True(repair.Code == 0, repair.Stdout + repair.Stderr);
            Qemu.AssertClean(dir.Path, "c.qcow2");
            Assert.Equal(before, Qemu.RawBytes(dir.Path, "c.qcow2"));
        }
        else
        {
            AssertRepairsAsQemuImg(dir, image, mode);
        }
    }

    /// <summary>
    /// Repairs copies of an image with qemu-img and with qcow: the same output and exit code, and
    /// the same bytes, except in clusters qemu-img discarded (they read as zeros in its copy).
    /// </summary>
    private static void AssertRepairsAsQemuImg(TempDir dir, byte[] image, string mode, int clusterSize = ClusterSize)
    {
        File.WriteAllBytes(dir.File("q.qcow2"), image);
        File.WriteAllBytes(dir.File("c.qcow2"), image);
        foreach (string output in new[] { "human", "json" })
        {
            File.Copy(dir.File("q.qcow2"), dir.File($"q-{output}.qcow2"), overwrite: true);
            File.Copy(dir.File("c.qcow2"), dir.File($"c-{output}.qcow2"), overwrite: true);
            var theirs = Qemu.Run("qemu-img", dir.Path, "check", "-r", mode, $"--output={output}", $"q-{output}.qcow2");
            var mine = Run("check", "-r", mode, $"--output={output}", dir.File($"c-{output}.qcow2"));

            Assert.Equal(theirs.Stderr.Replace("qemu-img: ", "qcow: "), mine.Stderr);
            Assert.Equal(theirs.Stdout.Replace($"q-{output}.qcow2", "IMAGE"), mine.Stdout.Replace(dir.File($"c-{output}.qcow2"), "IMAGE"));
            Assert.Equal(theirs.ExitCode, mine.Code);
        }

        byte[] qemus = File.ReadAllBytes(dir.File("q-human.qcow2"));
        byte[] ours = File.ReadAllBytes(dir.File("c-human.qcow2"));
        Assert.Equal(qemus.Length, ours.Length);
        for (int at = 0; at < qemus.Length; at += clusterSize)
        {
            int length = Math.Min(clusterSize, qemus.Length - at);
            ReadOnlySpan<byte> theirCluster = qemus.AsSpan(at, length);
            Assert.True(
                theirCluster.SequenceEqual(ours.AsSpan(at, length)) || !theirCluster.ContainsAnyExcept((byte)0),
                $"host cluster at 0x{at:x} differs from qemu-img's repair");
        }
    }

    [OracleFact]
    public void Repair_OfCompressedStreamsThatCrossIntoDataClusters_MatchesQemuImg()
    {
        // iotest 214: compressed descriptors whose sector counts reach into the clusters a later
        // write allocates; those clusters are then referenced three and two times.
        const int Cluster = 2 << 20;
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M,compression_type=zlib", "z.qcow2", "8M");
        Qemu.Io(dir.Path, "z.qcow2", "write -c -P 0x11 0 2M", "write -c -P 0x11 2M 2M");
        using (FileStream f = File.OpenWrite(dir.File("z.qcow2")))
        {
            f.Position = 0x800000;
            f.Write([0x7f, 0xfe]);
            f.Position = 0x800008;
            f.Write([0x7f, 0xfe]);
        }

        Qemu.Io(dir.Path, "z.qcow2", "write -P 0x22 4M 4M");
        var theirs = Qemu.Run("qemu-img", dir.Path, "check", "z.qcow2");
        var mine = Run("check", dir.File("z.qcow2"));
        Assert.Contains("ERROR cluster 6 refcount=1 reference=3", theirs.Stderr);
        Assert.Equal(theirs.Stderr, mine.Stderr);
        Assert.Equal(theirs.Stdout, mine.Stdout);
        Assert.Equal(theirs.ExitCode, mine.Code);

        AssertRepairsAsQemuImg(dir, File.ReadAllBytes(dir.File("z.qcow2")), "all", Cluster);
        Qemu.AssertClean(dir.Path, "c-human.qcow2");
        Qemu.Io(dir.Path, "c-human.qcow2", "read -P 0x22 4M 4M");
    }

    [OracleFact]
    public void RepairLeaks_FreesLeakedClusters_AsQemuImgDoes()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "l.qcow2", "16M");
        Qemu.Io(dir.Path, "l.qcow2", "write -P 7 0 128k");
        byte[] image = File.ReadAllBytes(dir.File("l.qcow2"));
        BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan(0x20000 + 6 * 2), 2);
        File.WriteAllBytes(dir.File("l.qcow2"), image);
        File.WriteAllBytes(dir.File("q.qcow2"), image);

        var theirs = Qemu.Run("qemu-img", dir.Path, "check", "-r", "leaks", "--output=json", "q.qcow2");
        var mine = Run("check", "-r", "leaks", "--output=json", dir.File("l.qcow2"));

        Assert.Equal(theirs.ExitCode, mine.Code);
        Assert.Contains("\"leaks-fixed\": 1", mine.Stdout);
        Assert.Contains("\"leaks-fixed\": 1", theirs.Stdout);
        Qemu.AssertClean(dir.Path, "l.qcow2");
        Qemu.Io(dir.Path, "l.qcow2", "read -P 7 0 128k");
    }

    [OracleTheory]
    [InlineData("raw")]
    [InlineData("qcow")]
    public void Check_OfAFormatWithoutChecks_Exits63(string format)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", format, "x.img", "1M");

        var theirs = Qemu.Run("qemu-img", dir.Path, "check", "x.img");
        var mine = Run("check", dir.File("x.img"));

        Assert.Equal(63, theirs.ExitCode);
        Assert.Equal(63, mine.Code);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static ulong Get(byte[] b, long at) => BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan((int)at));

    private static void Set(byte[] b, long at, ulong value) => BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan((int)at), value);
}
