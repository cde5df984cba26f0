// QcowImage.Check against qemu-img check: the same figures on QEMU's images, the same verdict on
// images with leaks and refcount corruption made by editing bytes, and after a repair
// qemu-img finds the image clean with the guest data unchanged.
using System.Buffers.Binary;
using System.IO;
using System.Text.Json;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class CheckTests
{
    internal static (long Corruptions, long Leaks, long End, long Total, long Allocated, long Fragmented, long Compressed) QemuFigures(TempDir dir, string name)
    {
        string json = Qemu.Run("qemu-img", dir.Path, "check", "--output=json", name).Stdout;
        JsonElement r = JsonDocument.Parse(json).RootElement;
        long Get(string key) => r.TryGetProperty(key, out JsonElement v) ? v.GetInt64() : 0;
        return (Get("corruptions"), Get("leaks"), Get("image-end-offset"), Get("total-clusters"), Get("allocated-clusters"), Get("fragmented-clusters"), Get("compressed-clusters"));
    }

    internal static (long, long, long, long, long, long, long) Figures(QcowCheckResult r) =>
        (r.Corruptions, r.Leaks, r.ImageEndOffset, r.TotalClusters, r.AllocatedClusters, r.FragmentedClusters, r.CompressedClusters);

    internal static QcowCheckResult CheckWithQcow(TempDir dir, string name, QcowCheckMode mode = QcowCheckMode.ReportOnly)
    {
        using QcowImage image = QcowImage.Open(dir.File(name), new QcowOpenOptions { ReadOnly = mode == QcowCheckMode.ReportOnly, ForceCorrupt = true });
        return image.Check(mode);
    }

    [OracleTheory]
    [InlineData("cluster_size=65536")]
    [InlineData("cluster_size=512")]
    [InlineData("compat=0.10,cluster_size=4096")]
    public void Check_ReportsQemuImgsFigures_OnQemusImages(string options)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", options, "q.qcow2", "16M");
        Qemu.Io(dir.Path, "q.qcow2", "write -P 1 0 300k", "write -P 2 2M 64k", "write -c -P 3 4M 64k", "write -z 8M 1M", "write -P 4 1M 10k");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "s", "q.qcow2");
        Qemu.Io(dir.Path, "q.qcow2", "write -P 5 100k 20k");

        QcowCheckResult mine = CheckWithQcow(dir, "q.qcow2");
        Assert.True(QemuFigures(dir, "q.qcow2") == Figures(mine), $"qemu-img {QemuFigures(dir, "q.qcow2")}, qcow {Figures(mine)}: {string.Join("; ", mine.Messages)}");
    }

    internal static void SetRefcount16(string path, long cluster, ushort value)
    {
        // Fresh default image: the one refcount block is at 0x20000, 16-bit entries.
        using FileStream f = File.OpenWrite(path);
        f.Position = 0x20000 + cluster * 2;
        byte[] b = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        f.Write(b);
    }

    [OracleFact]
    public void Check_FindsALeak_AndRepairLeavesItClean()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "l.qcow2", "16M");
        Qemu.Io(dir.Path, "l.qcow2", "write -P 7 0 128k");
        using (FileStream f = File.OpenWrite(dir.File("l.qcow2")))
        {
            f.SetLength(12 * 65536);
        }

        SetRefcount16(dir.File("l.qcow2"), 11, 1);
        Assert.Equal(QemuFigures(dir, "l.qcow2"), Figures(CheckWithQcow(dir, "l.qcow2")));
        Assert.Equal(1, CheckWithQcow(dir, "l.qcow2").Leaks);

        QcowCheckResult repaired = CheckWithQcow(dir, "l.qcow2", QcowCheckMode.RepairLeaks);

        Assert.Equal((1L, 0L, 0L), (repaired.LeaksFixed, repaired.Leaks, repaired.Corruptions));
        Qemu.AssertClean(dir.Path, "l.qcow2");
        Qemu.Io(dir.Path, "l.qcow2", "read -P 7 0 128k");
    }

    [OracleFact]
    public void Check_FindsRefcountCorruption_AndRepairAllLeavesItClean()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "c.qcow2", "16M");
        Qemu.Io(dir.Path, "c.qcow2", "write -P 9 0 192k");
        SetRefcount16(dir.File("c.qcow2"), 6, 0);
        Assert.Equal(QemuFigures(dir, "c.qcow2"), Figures(CheckWithQcow(dir, "c.qcow2")));
        Assert.Equal(0, CheckWithQcow(dir, "c.qcow2", QcowCheckMode.RepairLeaks).CorruptionsFixed);

        QcowCheckResult repaired = CheckWithQcow(dir, "c.qcow2", QcowCheckMode.RepairAll);

        Assert.True(repaired.IsClean, string.Join("\n", repaired.Messages));
        Qemu.AssertClean(dir.Path, "c.qcow2");
        Qemu.Io(dir.Path, "c.qcow2", "read -P 9 0 192k");
    }
}
