// qcow check against qemu-img check: for each class of corruption made by editing bytes, the same
// report (JSON text, human text, messages, exit code); after qcow check -r all, qemu-img finds
// the image clean and every guest cluster the corruption did not destroy reads as before.
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

    /// <summary>An edit of the test image's first L1 entry, L2 entry or refcount table; which guest clusters it destroys.</summary>
    public sealed record Corruption(string Name, Action<byte[], long, long> Edit, int DestroyedClusters)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Corruption> Corruptions => new()
    {
        new("L2 COPIED flag cleared", (b, l1, l2) => Set(b, l2, Get(b, l2) & ~Copied), 0),
        new("L1 COPIED flag cleared", (b, l1, l2) => Set(b, l1, Get(b, l1) & ~Copied), 0),
        new("L2 reserved bits", (b, l1, l2) => Set(b, l2, Get(b, l2) | (1UL << 56) | 2), 0),
        new("L1 reserved bits", (b, l1, l2) => Set(b, l1, Get(b, l1) | (1UL << 60)), 0),
        new("L2 entry past the end of the file", (b, l1, l2) => Set(b, l2, Copied | 0x10000000), 1),
        new("L2 entry misaligned", (b, l1, l2) => Set(b, l2, Get(b, l2) + 0x200), 1),
        new("L1 entry past the end of the file", (b, l1, l2) => Set(b, l1, Copied | 0x10000000), 256),
        new("L1 entry misaligned", (b, l1, l2) => Set(b, l1, Get(b, l1) + 0x200), 256),
        new("data cluster on a refcount block", (b, l1, l2) => Set(b, l2, Copied | Get(b, (long)Get(b, 48))), 1),
        new("refcount too low", (b, l1, l2) => BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(0x20000 + 5 * 2), 0), 0),
        new("refcount too high (leak)", (b, l1, l2) => BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(0x20000 + 6 * 2), 2), 0),
        new("refcount table entry misaligned", (b, l1, l2) => Set(b, (long)Get(b, 48), Get(b, (long)Get(b, 48)) + 0x200), 0),
        new("compressed cluster with COPIED", (b, l1, l2) => Set(b, l2 + 8 * 2, Get(b, l2 + 8 * 2) | Copied), 0),
    };

    [OracleTheory]
    [MemberData(nameof(Corruptions))]
    public void Check_ReportsWhatQemuImgReports_AndRepairAllLeavesItClean(Corruption corruption)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "16M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 1 0 64k", "write -P 2 64k 64k", "write -c -P 3 128k 64k", "write -P 4 1M 64k");
        byte[] image = File.ReadAllBytes(dir.File("base.qcow2"));
        byte[] before = Qemu.RawBytes(dir.Path, "base.qcow2");
        long l1 = (long)Get(image, 40);
        long l2 = (long)(Get(image, l1) & ~Copied & 0x00fffffffffffe00);
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

        var repair = Run("check", "-r", "all", dir.File("c.qcow2"));

        Assert.True(repair.Code == 0, repair.Stdout + repair.Stderr);
        Qemu.AssertClean(dir.Path, "c.qcow2");
        byte[] after = Qemu.RawBytes(dir.Path, "c.qcow2");
        int intact = 0;
        for (int c = 0; c < before.Length / ClusterSize; c++)
        {
            if (before.AsSpan(c * ClusterSize, ClusterSize).SequenceEqual(after.AsSpan(c * ClusterSize, ClusterSize)))
            {
                intact++;
            }
        }

        Assert.True(intact >= before.Length / ClusterSize - corruption.DestroyedClusters, $"{intact} clusters intact");
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
