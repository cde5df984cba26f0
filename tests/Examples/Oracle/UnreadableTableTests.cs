// Metadata QEMU cannot read is an error, never zeros: an L1 table stored at or past QEMU's largest
// request offset (2^63 - 2^30) fails to open with an I/O error in qemu-img and in Qcow alike, and one
// just below it (past the end of the file) reads as zeros in both.
using System;
using System.Buffers.Binary;
using System.IO;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class UnreadableTableTests
{
    /// <summary>The L1 table offset field: byte 40 of both the qcow and the qcow2 header.</summary>
    private const int L1OffsetField = 40;

    [OracleTheory]
    [InlineData("qcow2", 0x7FFFFFFFFFFF0000UL, false)]
    [InlineData("qcow2", 0x7FFFFFFFC0000000UL, false)]
    [InlineData("qcow2", 0x7FFFFFFFBFFF0000UL, true)]
    [InlineData("qcow", 0x7FFFFFFFFFFF0000UL, false)]
    [InlineData("qcow", 0x7FFFFFFFC0000000UL, false)]
    [InlineData("qcow", 0x7FFFFFFFBFFFFFF8UL, true)]
    public void L1TableNearTheLargestOffset_OpensOnlyWhereQemuReadsIt(string format, ulong l1Offset, bool readable)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", format, "x.img", "1M");
        byte[] bytes = File.ReadAllBytes(dir.File("x.img"));
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(L1OffsetField), l1Offset);
        File.WriteAllBytes(dir.File("x.img"), bytes);

        var theirs = Qemu.Run("qemu-img", dir.Path, "convert", "-O", "raw", "x.img", "theirs.raw");
        var mine = QcowTool.Run("convert", "-O", "raw", dir.File("x.img"), dir.File("mine.raw"));

        Assert.Equal(readable ? 0 : 1, theirs.ExitCode);
        Assert.Equal(theirs.ExitCode, mine.Code);
        if (readable)
        {
            Assert.Equal(File.ReadAllBytes(dir.File("theirs.raw")), File.ReadAllBytes(dir.File("mine.raw")));
        }
        else
        {
            Assert.Contains("Input/output error", theirs.Stderr);
            Assert.Contains("Could not read L1 table", mine.Stderr);
            Assert.Contains("Input/output error", mine.Stderr);
            var e = Assert.Throws<QcowFormatException>(() => QcowImage.Open(dir.File("x.img"), new QcowOpenOptions { ReadOnly = true }));
            Assert.Equal((QcowStructure.L1Table, (long)l1Offset), (e.Structure, e.Offset));
        }
    }
}
