// Clusters and tables past the end of the file read as QEMU reads them: a data cluster there
// reads as zeros and an L2 table there maps nothing, so convert and map give qemu-img's result.
// Writing through such a table is refused (its entries would grow the file to wherever it
// points), and the refused image is left byte-identical.
using System;
using System.Buffers.Binary;
using System.IO;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class PastEndTests
{
    /// <summary>The L1 table offset field of the qcow2 header.</summary>
    private const int L1OffsetField = 40;

    [OracleFact]
    public void DataClustersPastTheEnd_ReadAsZeros()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "x.qcow2", "4M");
        Qemu.Io(dir.Path, "x.qcow2", "write -P 1 0 2M", "write -P 2 3M 1M");
        using (var file = new FileStream(dir.File("x.qcow2"), FileMode.Open))
        {
            file.SetLength(1 << 20);
        }

        AssertReadsAsQemuImg(dir);
    }

    [OracleFact]
    public void L2TablePastTheEnd_MapsNothing_AndIsNeverWritten()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "x.qcow2", "4M");
        Qemu.Io(dir.Path, "x.qcow2", "write -P 1 0 2M");
        byte[] bytes = File.ReadAllBytes(dir.File("x.qcow2"));
        int l1 = (int)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(L1OffsetField));
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(l1), (1UL << 63) | 0x10000000);
        File.WriteAllBytes(dir.File("x.qcow2"), bytes);

        AssertReadsAsQemuImg(dir);
        Assert.Equal(Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", "x.qcow2"), QcowTool.Run("map", "--output=json", dir.File("x.qcow2")).Stdout);

        var write = QcowTool.Run("io", "-c", "write -P 5 0 64k", dir.File("x.qcow2"));
        // Refused (QEMU would grow the file out to the table), and reported as qemu-io reports
        // a request the driver fails.
        Assert.Equal(1, write.Code);
        Assert.Equal("write failed: Input/output error\n", write.Stdout);
        Assert.Equal(bytes, File.ReadAllBytes(dir.File("x.qcow2")));
    }

    private static void AssertReadsAsQemuImg(TempDir dir)
    {
        Qemu.Ok("qemu-img", dir.Path, "convert", "-O", "raw", "x.qcow2", "theirs.raw");
        var mine = QcowTool.Run("convert", "-O", "raw", dir.File("x.qcow2"), dir.File("mine.raw"));
        Assert.True(mine.Code == 0, mine.Stderr);
        Assert.Equal(File.ReadAllBytes(dir.File("theirs.raw")), File.ReadAllBytes(dir.File("mine.raw")));
    }
}
