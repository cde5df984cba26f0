// Oracle tests beyond the matrix: compressed images from qemu-img convert -c (deflate and zstd),
// qcow v1 both ways, backing chains three deep, and refcount table growth.
using System;
using System.IO;
using System.Linq;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class FormatsAndChainsTests
{
    private static byte[] MixedData(int length)
    {
        byte[] data = new byte[length];
        new Random(42).NextBytes(data.AsSpan(0, length / 4));
        for (int i = length / 4; i < length / 2; i++)
        {
            data[i] = (byte)"hello qcow "[i % 11];
        }

        return data;
    }

    [OracleTheory]
    [InlineData("zlib", "qcow2")]
    [InlineData("zstd", "qcow2")]
    public void ConvertedWithCompression_ReadsAsQemuImgConvert(string compression, string format)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in.raw"), MixedData(8 << 20));
        string[] options = format == "qcow2" ? ["-o", $"compression_type={compression}"] : [];
        Qemu.Ok("qemu-img", dir.Path, ["convert", "-c", "-O", format, .. options, "in.raw", "c.img"]);

        OracleMatrixTests.AssertReadsLikeQemu(dir, "c.img");
    }

    [OracleFact]
    public void QcowV1_BothWays()
    {
        using var dir = new TempDir();
        long size = 32L << 20;
        var ops = Scenarios.Fill(size, 4096, withCompressed: false);
        using (QcowImage image = QcowImage.Create(dir.File("mine.qcow"), new QcowCreateOptions { Size = size, Format = QcowImageFormat.Qcow }))
        {
            ops.ForEach(op => op.Apply(image));
        }

        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow", "theirs.qcow", size.ToString());
        Qemu.Io(dir.Path, "theirs.qcow", ops.Select(o => o.QemuIo).ToArray());
        Qemu.Ok("qemu-img", dir.Path, "compare", "-q", "mine.qcow", "theirs.qcow");

        Qemu.Io(dir.Path, "theirs.qcow", "write -c -P 0x5c 1M 4k");
        OracleMatrixTests.AssertReadsLikeQemu(dir, "theirs.qcow");
    }

    [OracleTheory]
    [InlineData("qcow2", "1.1")]
    [InlineData("qcow2", "0.10")]
    [InlineData("qcow", "")]
    public void BackingChainThreeDeep_ReadsAndWritesLikeQemu(string format, string compat)
    {
        using var dir = new TempDir();
        string[] o = compat == "" ? [] : ["-o", $"compat={compat}"];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "base.img", "16M"]);
        Qemu.Io(dir.Path, "base.img", "write -P 0x01 0 8M", "write -P 0x0b 12M 1M");
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "-b", "base.img", "-F", format, "mid.img"]);
        Qemu.Io(dir.Path, "mid.img", "write -P 0x02 1M 2M", "write -z 4M 64k");
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "-b", "mid.img", "-F", format, "top.img", "24M"]);
        Qemu.Io(dir.Path, "top.img", "write -P 0x03 1500k 1M", "discard 6M 1M");
        OracleMatrixTests.AssertReadsLikeQemu(dir, "top.img");

        File.Copy(dir.File("top.img"), dir.File("top2.img"));
        GuestOp[] ops = [new WriteOp(1000 * 1024, 100 * 1024, 0x09), new WriteOp(7 << 20, 10 * 1024, 0x08), new WriteOp(20 << 20, 5 * 1024, 0x07), new ZeroOp(12 << 20, 64 << 10)];
        using (QcowImage image = QcowImage.Open(dir.File("top.img")))
        {
            Array.ForEach(ops, op => op.Apply(image));
        }

        Qemu.Io(dir.Path, "top2.img", ops.Select(op => op.QemuIo).ToArray());
        if (format == "qcow2")
        {
            Qemu.AssertClean(dir.Path, "top.img");
        }

        Qemu.Ok("qemu-img", dir.Path, "compare", "-q", "top.img", "top2.img");
    }

    [OracleTheory]
    [InlineData(512, 16)]
    [InlineData(512, 64)]
    [InlineData(1024, 64)]
    public void RefcountTableGrowth_LeavesACleanImage(int clusterSize, int refcountBits)
    {
        using var dir = new TempDir();
        long size = 64L << 20;
        using (QcowImage image = QcowImage.Create(dir.File("grow.qcow2"), new QcowCreateOptions { Size = size, ClusterSize = clusterSize, RefcountBits = refcountBits }))
        {
            byte[] chunk = new byte[1 << 20];
            for (int i = 0; i < 24; i++)
            {
                chunk.AsSpan().Fill((byte)(i + 1));
                image.Write((long)i << 20, chunk);
            }

            image.Discard(3 << 20, 1 << 20);
        }

        Qemu.AssertClean(dir.Path, "grow.qcow2");
        Qemu.Io(dir.Path, "grow.qcow2", "read -P 0x01 0 1M", "read -P 0 3M 1M", "read -P 0x18 23M 1M");
    }

    /// <summary>
    /// A free cluster low in the image (the refcount table QEMU moved away) with thousands of
    /// used clusters after it: allocating two clusters must not need more refcount blocks at once
    /// than a small cache holds (this used to loop for ever).
    /// </summary>
    [OracleFact]
    public void AllocationPastManyFullRefcountBlocks_FinishesWithASmallCache()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", "full.qcow2", "3M");
        Qemu.Io(dir.Path, "full.qcow2", "write -P 0x41 0 2M");
        using (QcowImage image = QcowImage.Open(dir.File("full.qcow2"), new QcowOpenOptions { CacheSize = 16 << 10 }))
        {
            image.Write(2757632, new byte[544]);
        }

        Qemu.AssertClean(dir.Path, "full.qcow2");
    }
}
