// Writing to an image with an internal snapshot made by qemu-img: shared L2 tables and data
// clusters (refcount 2, COPIED clear) must be copied, never overwritten, so the snapshot keeps
// its data and the refcounts stay exact.
using System;
using System.IO;
using System.Linq;
using Qcow.Format;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class SnapshotTests
{
    [OracleTheory]
    [InlineData("1.1", 65536)]
    [InlineData("0.10", 4096)]
    [InlineData("1.1", 512)]
    public void WritingOverASnapshot_CopiesSharedClusters_AndKeepsTheSnapshot(string compat, int clusterSize)
    {
        using var dir = new TempDir();
        long cs = clusterSize;
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"compat={compat},cluster_size={cs}", "mine.qcow2", "8M");
        Qemu.Io(dir.Path, "mine.qcow2", $"write -P 0x11 0 {6 * cs}", $"write -c -P 0x12 {8 * cs} {cs}", $"write -P 0x13 {(4 << 20)} {cs}");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "s1", "mine.qcow2");
        File.Copy(dir.File("mine.qcow2"), dir.File("theirs.qcow2"));

        GuestOp[] ops =
        [
            new WriteOp(cs / 2, cs, 0x21),
            new ZeroOp(2 * cs, cs),
            new DiscardOp(3 * cs, cs),
            new WriteOp(8 * cs + 100, 200, 0x22),
            new WriteOp(5 << 20, cs, 0x23),
        ];
        using (QcowImage image = QcowImage.Open(dir.File("mine.qcow2")))
        {
            foreach (GuestOp op in ops)
            {
                op.Apply(image);
            }
        }

        Qemu.Io(dir.Path, "theirs.qcow2", ops.Select(o => o.QemuIo).ToArray());
        Qemu.AssertClean(dir.Path, "mine.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "compare", "-q", "mine.qcow2", "theirs.qcow2");

        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-a", "s1", "mine.qcow2");
        Qemu.Io(dir.Path, "mine.qcow2", $"read -P 0x11 0 {6 * cs}", $"read -P 0x12 {8 * cs} {cs}", $"read -P 0x13 {(4 << 20)} {cs}");
    }

    /// <summary>The snapshot entry codec against QEMU's own table: each entry decodes and encodes back to the bytes qemu-img wrote.</summary>
    [OracleTheory]
    [InlineData("1.1")]
    [InlineData("0.10")]
    public void SnapshotEntriesQemuWrote_EncodeBackToTheSameBytes(string compat)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", "s.qcow2", "8M");
        Qemu.Io(dir.Path, "s.qcow2", "write -P 1 0 64k");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "first", "s.qcow2");
        Qemu.Io(dir.Path, "s.qcow2", "write -P 2 1M 64k");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "second snapshot \u2603 with a longer name", "s.qcow2");

        byte[] file = File.ReadAllBytes(dir.File("s.qcow2"));
        using FileStorage storage = FileStorage.Open(dir.File("s.qcow2"), writable: false);
        Header header = QcowDevice.ReadHeader(storage);
        SnapshotTable table = SnapshotTable.Read(storage, header);
        Assert.Equal(2, table.Entries.Count);
        long at = (long)header.SnapshotsOffset;
        foreach (Snapshot snapshot in table.Entries)
        {
            // QEMU pads between entries, not after the last, which may end the file.
            byte[] encoded = SnapshotModule.encode(snapshot);
            int stored = Math.Min(encoded.Length, file.Length - (int)at);
            Assert.Equal(file.AsSpan((int)at, stored).ToArray(), encoded[..stored]);
            Assert.All(encoded[stored..], b => Assert.Equal(0, b));
            at += encoded.Length;
        }

        Assert.Equal((long)table.Bytes, at - (long)header.SnapshotsOffset);
    }
}
