// Examples of QcowImage.Measure (qemu-img measure's figures) and QcowImage.Compare (its verdicts).
using System.Text.Json.Nodes;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class MeasureAndCompareExamples
{
    [OracleFact]
    public void Measure_OfAnImage_IsQemuImgMeasures()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "100M");
        Qemu.Io(dir.Path, "a.qcow2", "write -P 1 0 3M", "write -P 2 50M 64k");
        JsonNode theirs = JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "measure", "--output=json", "-O", "qcow2", "-o", "cluster_size=4k", "a.qcow2"))!;

        using QcowImage image = QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { ReadOnly = true });
        QcowMeasurement mine = QcowImage.Measure(new QcowCreateOptions { ClusterSize = 4096 }, image);

        Assert.Equal(((long)theirs["required"]!, (long)theirs["fully-allocated"]!), (mine.Required, mine.FullyAllocated));
    }

    [OracleFact]
    public void Measure_OfASize_IsQemuImgMeasures()
    {
        using var dir = new TempDir();
        JsonNode theirs = JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "measure", "--output=json", "-O", "qcow2", "-o", "cluster_size=512,refcount_bits=1", "--size", "3G"))!;

        QcowMeasurement mine = QcowImage.Measure(new QcowCreateOptions { Size = 3L << 30, ClusterSize = 512, RefcountBits = 1 });

        Assert.Equal(((long)theirs["required"]!, (long)theirs["fully-allocated"]!), (mine.Required, mine.FullyAllocated));
        Assert.Null(mine.Bitmaps);
    }

    [Fact]
    public void Compare_FindsTheFirstDifferingSector_AndStrictModeTheSizes()
    {
        using var dir = new TempDir();
        using QcowImage a = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 4 << 20 });
        using QcowImage b = QcowImage.Create(dir.File("b.qcow2"), new QcowCreateOptions { Size = 4 << 20 });
        using QcowImage longer = QcowImage.Create(dir.File("c.qcow2"), new QcowCreateOptions { Size = 8 << 20 });
        a.Write(2 << 20, new byte[] { 1 });
        Assert.True(QcowImage.Compare(b, longer).Identical);
        b.Write(2 << 20, new byte[] { 1 });
        b.Write((3 << 20) + 1000, new byte[] { 2 });

        QcowComparison differ = QcowImage.Compare(a, b);
        QcowComparison strict = QcowImage.Compare(b, longer, strict: true);

        Assert.Equal((QcowComparisonVerdict.ContentMismatch, (long?)((3 << 20) + 512)), (differ.Verdict, differ.Offset));
        Assert.Equal((QcowComparisonVerdict.SizeMismatch, true), (strict.Verdict, strict.SizesDiffer));
    }
}
