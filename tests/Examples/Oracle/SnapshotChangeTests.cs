// Internal snapshots made, applied and deleted by Qcow and by qemu-img, each side judging the
// other's: after every change qemu-img check finds no errors and no leaks, each snapshot reads
// as the raw copy taken when it was made, and qemu-img snapshot -l lists what qcow snapshot -l lists.
using System;
using System.IO;
using System.Linq;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class SnapshotChangeTests
{
    public static TheoryData<string, int, int> Geometries => new()
    {
        { "1.1", 65536, 16 },
        { "0.10", 4096, 16 },
        { "1.1", 512, 4 },
        { "1.1", 4096, 64 },
    };

    [OracleTheory]
    [MemberData(nameof(Geometries))]
    public void SnapshotsQemuMade_AreListedAppliedAndDeletedByQcow(string compat, int clusterSize, int refcountBits)
    {
        using var dir = new TempDir();
        long cs = clusterSize;
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"compat={compat},cluster_size={cs},refcount_bits={refcountBits}", "image", "4M");
        Qemu.Io(dir.Path, "image", $"write -P 0x11 0 {20 * cs}", $"write -c -P 0x12 {40 * cs} {cs}", $"write -P 0x13 3M {cs}");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "first", "image");
        byte[] first = Qemu.RawBytes(dir.Path, "image");
        Qemu.Io(dir.Path, "image", $"write -P 0x21 {cs / 2} {3 * cs}", $"write -z {10 * cs} {2 * cs}", $"discard {14 * cs} {cs}", $"write -P 0x22 2M {5 * cs}");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "second", "image");
        byte[] second = Qemu.RawBytes(dir.Path, "image");
        Qemu.Io(dir.Path, "image", $"write -P 0x31 {cs} {30 * cs}");

        Assert.Equal(Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "image"), Ok(dir.Path, "snapshot", "-l", "image"));
        Assert.Equal(first, Qemu.RawBytes(dir.Path, "image", "-l", "first"));

        Ok(dir.Path, "snapshot", "-a", "first", "image");
        Qemu.AssertClean(dir.Path, "image");
        Assert.Equal(first, Qemu.RawBytes(dir.Path, "image"));
        Assert.Equal(second, Qemu.RawBytes(dir.Path, "image", "-l", "second"));

        Ok(dir.Path, "snapshot", "-d", "second", "image");
        Qemu.AssertClean(dir.Path, "image");
        Assert.Equal(first, Qemu.RawBytes(dir.Path, "image"));
        Assert.Equal(first, Qemu.RawBytes(dir.Path, "image", "-l", "first"));
        Assert.DoesNotContain("second", Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "image"));

        Ok(dir.Path, "snapshot", "-d", "1", "image");
        Qemu.AssertClean(dir.Path, "image");
        Assert.Equal("", Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "image"));
        Assert.Equal(first, Qemu.RawBytes(dir.Path, "image"));
    }

    [OracleTheory]
    [MemberData(nameof(Geometries))]
    public void SnapshotsQcowMade_AreListedAppliedAndDeletedByQemu_AsQemuMakesThem(string compat, int clusterSize, int refcountBits)
    {
        using var dir = new TempDir();
        long cs = clusterSize;
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"compat={compat},cluster_size={cs},refcount_bits={refcountBits}", "mine", "4M");
        File.Copy(dir.File("mine"), dir.File("theirs"));
        GuestOp[][] sessions =
        [
            [new WriteOp(0, 20 * cs, 0x11), new WriteOp(40 * cs, cs, 0x12), new WriteOp(3 << 20, cs, 0x13)],
            [new WriteOp(cs / 2, 3 * cs, 0x21), new ZeroOp(10 * cs, 2 * cs), new DiscardOp(14 * cs, cs), new WriteOp(2 << 20, 5 * cs, 0x22)],
            [new WriteOp(cs, 30 * cs, 0x31), new WriteOp(41 * cs, 100, 0x32)],
        ];

        var taken = new System.Collections.Generic.List<byte[]>();
        for (int i = 0; i < sessions.Length; i++)
        {
            // Qcow writes its image itself; qemu-io writes the twin.
            using (QcowImage image = QcowImage.Open(dir.File("mine")))
            {
                foreach (GuestOp op in sessions[i])
                {
                    op.Apply(image);
                }
            }

            Qemu.Io(dir.Path, "theirs", [.. sessions[i].Select(o => o.QemuIo)]);
            var (code, _, stderr) = QcowTool.RunIn(dir.Path, "snapshot", "-c", $"s{i}", "mine");
            var (qemuCode, _, qemuStderr) = Qemu.Run("qemu-img", dir.Path, "snapshot", "-c", $"s{i}", "theirs");
            Assert.Equal((qemuCode, qemuStderr.Replace("qemu-img", "qcow", StringComparison.Ordinal)), (code, stderr));
            Qemu.AssertClean(dir.Path, "mine");
            taken.Add(Qemu.RawBytes(dir.Path, "theirs"));
            Assert.Equal(taken[i], Qemu.RawBytes(dir.Path, "mine"));
            Assert.Equal(WithoutDates(Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "theirs")), WithoutDates(Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "mine")));
            Assert.Equal(JsonSnapshots(dir.Path, "theirs"), JsonSnapshots(dir.Path, "mine"));
        }

        int made = Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "theirs").Split('\n').Count(l => l.Length > 0 && char.IsAsciiDigit(l[0]));
        Assert.True(made >= 2, $"{made} snapshots made");
        for (int i = 0; i < made; i++)
        {
            Assert.Equal(taken[i], Qemu.RawBytes(dir.Path, "mine", "-l", $"s{i}"));

            // And Qcow's own reading of a snapshot, without applying it.
            using QcowImage image = QcowImage.Open(dir.File("mine"), new QcowOpenOptions { ReadOnly = true, Snapshot = $"s{i}" });
            byte[] read = new byte[image.Length];
            image.Read(0, read);
            Assert.Equal(taken[i], read);
        }

        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-a", "s0", "mine");
        Qemu.AssertClean(dir.Path, "mine");
        Assert.Equal(taken[0], Qemu.RawBytes(dir.Path, "mine"));
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-d", "s0", "mine");
        Qemu.AssertClean(dir.Path, "mine");
        Assert.Equal(taken[1], Qemu.RawBytes(dir.Path, "mine", "-l", "s1"));
        Assert.Equal(taken[0], Qemu.RawBytes(dir.Path, "mine"));
    }

    [OracleFact]
    public void QcowSnapshotErrors_AreQemuImgs()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "image", "1M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow", "v1", "1M");
        string[][] calls =
        [
            ["-a", "nope", "image"],
            ["-d", "nope", "image"],
            ["-c", "x", "v1"],
            ["-l", "-c", "x", "image"],
            ["-l", "v1"],
            ["-l", "image"],
        ];
        foreach (string[] call in calls)
        {
            var (qemuCode, qemuOut, qemuErr) = Qemu.Run("qemu-img", dir.Path, ["snapshot", .. call]);
            var (code, stdout, stderr) = QcowTool.RunIn(dir.Path, ["snapshot", .. call]);
            Assert.Equal((qemuCode, qemuOut, qemuErr.Replace("qemu-img", "qcow", StringComparison.Ordinal)), (code, stdout, stderr));
        }

        var (_, _, notFound) = Qemu.Run("qemu-img", dir.Path, "convert", "-O", "raw", "-l", "nope", "image", "out");
        Assert.Equal(notFound.Replace("qemu-img", "qcow", StringComparison.Ordinal), QcowTool.RunIn(dir.Path, ["convert", "-O", "raw", "-l", "nope", "image", "out"]).Stderr);
    }

    /// <summary>
    /// 2-bit refcounts count at most 3 references: the third snapshot of a cluster no write
    /// touched overflows, for qemu-img and Qcow alike, with the same message, and the image stays
    /// as it was.
    /// </summary>
    [OracleFact]
    public void NarrowRefcounts_OverflowAtTheSameSnapshot_AsQemu()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=2", "mine", "4M");
        Qemu.Io(dir.Path, "mine", "write -P 0x11 0 10240");
        File.Copy(dir.File("mine"), dir.File("theirs"));
        for (int i = 0; i < 3; i++)
        {
            byte[] before = File.ReadAllBytes(dir.File("mine"));
            var (code, _, stderr) = QcowTool.RunIn(dir.Path, "snapshot", "-c", $"s{i}", "mine");
            var (qemuCode, _, qemuStderr) = Qemu.Run("qemu-img", dir.Path, "snapshot", "-c", $"s{i}", "theirs");
            Assert.Equal((qemuCode, qemuStderr.Replace("qemu-img", "qcow", StringComparison.Ordinal)), (code, stderr));
            Qemu.AssertClean(dir.Path, "mine");
            if (code != 0)
            {
                Assert.Equal(2, i);
                Assert.Equal(WithoutDates(Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "theirs")), WithoutDates(Qemu.Ok("qemu-img", dir.Path, "snapshot", "-l", "mine")));
                Assert.Equal(Qemu.RawBytes(dir.Path, "theirs"), Qemu.RawBytes(dir.Path, "mine"));
                Assert.True(File.ReadAllBytes(dir.File("mine")).AsSpan(0, 512).SequenceEqual(before.AsSpan(0, 512)), "the header changed");
            }
        }
    }

    /// <summary>qcow in the folder, asserting it succeeds; its standard output.</summary>
    private static string Ok(string folder, params string[] args)
    {
        var (code, stdout, stderr) = QcowTool.RunIn(folder, args);
        Assert.True(code == 0, $"qcow {string.Join(' ', args)} exited {code}: {stderr}");
        return stdout;
    }

    /// <summary>qemu-img info --output=json's snapshot list, each entry without its date.</summary>
    private static string JsonSnapshots(string dir, string image)
    {
        using var json = System.Text.Json.JsonDocument.Parse(Qemu.Ok("qemu-img", dir, "info", "--output=json", image));
        return string.Join("\n", json.RootElement.GetProperty("snapshots").EnumerateArray().Select(s =>
            string.Join(",", s.EnumerateObject().Where(p => !p.Name.StartsWith("date", StringComparison.Ordinal)).Select(p => $"{p.Name}={p.Value}"))));
    }

    /// <summary>qemu-img snapshot -l without the DATE column (and the clock at its end).</summary>
    private static string WithoutDates(string list) =>
        string.Join("\n", list.Split('\n').Select(line => line.Length > 51 && char.IsAsciiDigit(line[0]) ? line[..35] + line[55..] : line));
}
