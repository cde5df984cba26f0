// One sequence of guest operations, written both as qemu-io commands and as QcowImage calls, so
// that QEMU and Qcow can fill images the same way and the results be compared.
using System;
using System.Collections.Generic;
using System.Globalization;

namespace Qcow.Examples.Oracle;

internal abstract record GuestOp(long Offset, long Length)
{
    public abstract string QemuIo { get; }

    /// <summary>False for operations only QEMU performs here (compressed writes).</summary>
    public virtual bool QcowCanDo => true;

    public abstract void Apply(QcowImage image);
}

internal sealed record WriteOp(long Offset, long Length, byte Pattern) : GuestOp(Offset, Length)
{
    public override string QemuIo => string.Create(CultureInfo.InvariantCulture, $"write -P 0x{Pattern:x2} {Offset} {Length}");

    public override void Apply(QcowImage image)
    {
        byte[] data = new byte[Length];
        data.AsSpan().Fill(Pattern);
        image.Write(Offset, data);
    }
}

internal sealed record ZeroOp(long Offset, long Length) : GuestOp(Offset, Length)
{
    public override string QemuIo => string.Create(CultureInfo.InvariantCulture, $"write -z {Offset} {Length}");

    public override void Apply(QcowImage image) => image.WriteZeroes(Offset, Length);
}

internal sealed record DiscardOp(long Offset, long Length) : GuestOp(Offset, Length)
{
    public override string QemuIo => string.Create(CultureInfo.InvariantCulture, $"discard {Offset} {Length}");

    public override void Apply(QcowImage image) => image.Discard(Offset, Length);
}

internal sealed record CompressedWriteOp(long Offset, long Length, byte Pattern) : GuestOp(Offset, Length)
{
    public override string QemuIo => string.Create(CultureInfo.InvariantCulture, $"write -c -P 0x{Pattern:x2} {Offset} {Length}");

    public override bool QcowCanDo => false;

    public override void Apply(QcowImage image) => throw new NotSupportedException("compressed writes come in a later issue");
}

internal static class Scenarios
{
    /// <summary>
    /// Writes that allocate, overwrite in place and across clusters, zero and discard whole and
    /// partial clusters, reach the last byte, and land in several L2 tables.
    /// </summary>
    public static List<GuestOp> Fill(long size, int clusterSize, bool withCompressed)
    {
        long cs = clusterSize;
        var ops = new List<GuestOp>
        {
            new WriteOp(0, 3 * cs + 100, 0x11),
            new WriteOp(cs / 2, cs, 0x22),
            new ZeroOp(5 * cs, 2 * cs),
            new WriteOp(8 * cs, 4 * cs, 0x33),
            new ZeroOp(9 * cs, cs),
            new DiscardOp(10 * cs, cs),
            new DiscardOp(11 * cs + 512, cs / 2),
            new ZeroOp(2 * cs + 100, 300),
            new WriteOp(size - 1000, 1000, 0x44),
            new WriteOp(size / 2 + 4096, 3 * cs, 0x55),
            new DiscardOp(size / 2, 2 * cs),
        };
        if (withCompressed)
        {
            ops.Add(new CompressedWriteOp(14 * cs, cs, 0x66));
            ops.Add(new CompressedWriteOp(15 * cs, cs, 0x67));
        }

        return ops;
    }

    /// <summary>More work on top of an image someone else filled.</summary>
    public static List<GuestOp> OnTop(long size, int clusterSize)
    {
        long cs = clusterSize;
        return
        [
            new WriteOp(cs + 7, 2 * cs, 0x71),
            new ZeroOp(8 * cs, 2 * cs),
            new DiscardOp(0, cs),
            new CompressedWriteOp(20 * cs, cs, 0x72),
            new WriteOp(size / 4, cs, 0x73),
        ];
    }
}
