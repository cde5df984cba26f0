// The oracle matrix: qcow2 v2 and v3, cluster sizes 512 B to 2 MiB, refcount widths 1, 16, 64.
// QEMU's images read as qemu-img reads them; Qcow's images pass qemu-img check and compare
// identical to QEMU's; QEMU writing on top of a Qcow image reads back right through Qcow.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class OracleMatrixTests
{
    public static IEnumerable<object[]> Matrix()
    {
        foreach (int cs in new[] { 512, 4096, 65536, 2097152 })
        {
            yield return ["0.10", cs, 16];
            foreach (int bits in new[] { 1, 16, 64 })
            {
                yield return ["1.1", cs, bits];
            }
        }
    }

    private static long SizeFor(int clusterSize) => clusterSize >= 2097152 ? 64L << 20 : 16L << 20;

    private static string Options(string compat, int cs, int bits) => $"compat={compat},cluster_size={cs},refcount_bits={bits}";

    [OracleTheory]
    [MemberData(nameof(Matrix))]
    public void QemuImage_ReadsAsQemuImgConvert(string compat, int clusterSize, int refcountBits)
    {
        using var dir = new TempDir();
        long size = SizeFor(clusterSize);
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", Options(compat, clusterSize, refcountBits), "q.qcow2", size.ToString());
        Qemu.Io(dir.Path, "q.qcow2", Scenarios.Fill(size, clusterSize, withCompressed: true).Select(o => o.QemuIo).ToArray());

        AssertReadsLikeQemu(dir, "q.qcow2");
        Assert.Equal(CheckTests.QemuFigures(dir, "q.qcow2"), CheckTests.Figures(CheckTests.CheckWithQcow(dir, "q.qcow2")));
    }

    [OracleTheory]
    [MemberData(nameof(Matrix))]
    public void QcowImage_PassesCheckAndComparesIdenticalToQemus(string compat, int clusterSize, int refcountBits)
    {
        using var dir = new TempDir();
        long size = SizeFor(clusterSize);
        List<GuestOp> ops = Scenarios.Fill(size, clusterSize, withCompressed: false);
        using (QcowImage image = QcowImage.Create(dir.File("mine.qcow2"), new QcowCreateOptions { Size = size, Compat = compat == "0.10" ? QcowCompat.V0_10 : QcowCompat.V1_1, ClusterSize = clusterSize, RefcountBits = refcountBits }))
        {
            ops.ForEach(op => op.Apply(image));
        }

        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", Options(compat, clusterSize, refcountBits), "theirs.qcow2", size.ToString());
        Qemu.Io(dir.Path, "theirs.qcow2", ops.Select(o => o.QemuIo).ToArray());

        Qemu.AssertClean(dir.Path, "mine.qcow2");
        Assert.True(CheckTests.CheckWithQcow(dir, "mine.qcow2").IsClean);
        Qemu.Ok("qemu-img", dir.Path, "compare", "-q", "mine.qcow2", "theirs.qcow2");
    }

    [OracleTheory]
    [MemberData(nameof(Matrix))]
    public void QemuWritingOnQcowImage_ReadsBackThroughQcow(string compat, int clusterSize, int refcountBits)
    {
        using var dir = new TempDir();
        long size = SizeFor(clusterSize);
        using (QcowImage image = QcowImage.Create(dir.File("mine.qcow2"), new QcowCreateOptions { Size = size, Compat = compat == "0.10" ? QcowCompat.V0_10 : QcowCompat.V1_1, ClusterSize = clusterSize, RefcountBits = refcountBits }))
        {
            Scenarios.Fill(size, clusterSize, withCompressed: false).ForEach(op => op.Apply(image));
        }

        Qemu.Io(dir.Path, "mine.qcow2", Scenarios.OnTop(size, clusterSize).Select(o => o.QemuIo).ToArray());

        Qemu.AssertClean(dir.Path, "mine.qcow2");
        AssertReadsLikeQemu(dir, "mine.qcow2");
    }

    internal static void AssertReadsLikeQemu(TempDir dir, string name)
    {
        byte[] expected = Qemu.RawBytes(dir.Path, name);
        using QcowImage image = QcowImage.Open(dir.File(name), new QcowOpenOptions { ReadOnly = true });
        Assert.Equal(expected.Length, image.Length);
        byte[] actual = new byte[image.Length];
        Assert.Equal(actual.Length, image.Read(0, actual));
        int first = actual.AsSpan().CommonPrefixLength(expected);
        Assert.True(first == expected.Length, $"{name}: first difference at guest offset {first}");
    }
}
