// Comparing two disks as qemu-img compare does: ranges both read as zeros are not read; a range
// only one allocates must read as zeros; strict mode wants the sizes and the block status to match.
using System;
using System.Threading;
using Qcow.IO;

namespace Qcow;

internal static class ImageComparer
{
    private const int ChunkBytes = 2 << 20;
    private const int Sector = 512;

    /// <summary>qemu-img's verdict: the first difference, or that the images read the same.</summary>
    public static QcowComparison Compare(IBlockDevice a, IBlockDevice b, bool strict, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        var compared = new Compared(Math.Max(a.Length, b.Length), progress);
        if (a.Length != b.Length && strict)
        {
            return new QcowComparison(QcowComparisonVerdict.SizeMismatch, null, true);
        }

        long common = Math.Min(a.Length, b.Length);
        byte[] bufferA = new byte[ChunkBytes];
        byte[] bufferB = new byte[ChunkBytes];
        for (long offset = 0; offset < common;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            BlockStatus sa = Run(a, offset, common);
            BlockStatus sb = Run(b, offset, common);
            long chunk = Math.Min(sa.Length, sb.Length);
            if (strict && (sa.Present, sa.Zero, sa.Data, sa.HasOffset) != (sb.Present, sb.Zero, sb.Data, sb.HasOffset))
            {
                return new QcowComparison(QcowComparisonVerdict.BlockStatusMismatch, offset, false);
            }

            if (!(sa.Zero && sb.Zero))
            {
                chunk = Math.Min(chunk, ChunkBytes);
                long? mismatch = sa.Present == sb.Present
                    ? (sa.Present ? FirstDifference(a, b, offset, (int)chunk, bufferA, bufferB) : null)
                    : FirstNonZero(sa.Present ? a : b, offset, (int)chunk, bufferA);
                if (mismatch is { } at)
                {
                    return new QcowComparison(QcowComparisonVerdict.ContentMismatch, at, a.Length != b.Length);
                }
            }

            offset += chunk;
            compared.Add(chunk);
        }

        IBlockDevice longer = a.Length > b.Length ? a : b;
        for (long offset = common; offset < longer.Length;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            BlockStatus s = Run(longer, offset, longer.Length);
            long chunk = s.Present && !s.Zero ? Math.Min(s.Length, ChunkBytes) : s.Length;
            if (s.Present && !s.Zero && FirstNonZero(longer, offset, (int)chunk, bufferA) is { } at)
            {
                return new QcowComparison(QcowComparisonVerdict.ContentMismatch, at, a.Length != b.Length);
            }

            offset += chunk;
            compared.Add(chunk);
        }

        return new QcowComparison(QcowComparisonVerdict.Identical, null, a.Length != b.Length);
    }

    /// <summary>
    /// The percentage compared, as qemu-img works it out and shows it: each chunk's share added to a
    /// float, from 0 (reported at the start); a comparison that stops at a difference ends below 100.
    /// </summary>
    private sealed class Compared
    {
        private readonly long _total;
        private readonly IProgress<double>? _progress;
        private float _percent;

        public Compared(long total, IProgress<double>? progress)
        {
            _total = total;
            _progress = progress;
            progress?.Report(0);
        }

        public void Add(long chunk)
        {
            float share = (float)chunk / _total * 100;
            _percent += share / 100 * 100;
            _progress?.Report(_percent);
        }
    }

    /// <summary>
    /// Block status from offset on, merged across clusters while it stays the same: a zero run
    /// whole (qemu-img skips it in one step), anything else up to one buffer, so that a long
    /// data run is not walked again for each buffer compared.
    /// </summary>
    private static BlockStatus Run(IBlockDevice device, long offset, long end)
    {
        BlockStatus first = device.Status(offset, end - offset);
        long length = first.Length;
        while (offset + length < end && (length < ChunkBytes || first.Zero))
        {
            BlockStatus next = device.Status(offset + length, end - offset - length);
            if ((next.Present, next.Zero, next.Data, next.HasOffset) != (first.Present, first.Zero, first.Data, first.HasOffset))
            {
                break;
            }

            length += next.Length;
        }

        return first with { Length = length };
    }

    /// <summary>Reads, a failure naming the image and the offset, as qemu-img compare reports it.</summary>
    private static void ReadNaming(IBlockDevice device, long offset, Span<byte> buffer)
    {
        try
        {
            device.Read(offset, buffer);
        }
        catch (System.IO.IOException e)
        {
            throw new QcowCompareReadException(device.Path, offset, e);
        }
    }

    /// <summary>The offset of the first 512-byte sector that differs, or null.</summary>
    private static long? FirstDifference(IBlockDevice a, IBlockDevice b, long offset, int length, byte[] bufferA, byte[] bufferB)
    {
        ReadNaming(a, offset, bufferA.AsSpan(0, length));
        ReadNaming(b, offset, bufferB.AsSpan(0, length));
        int at = bufferA.AsSpan(0, length).CommonPrefixLength(bufferB.AsSpan(0, length));
        return at == length ? null : offset + (at / Sector * Sector);
    }

    /// <summary>The offset of the first 512-byte sector that is not all zeros, or null.</summary>
    private static long? FirstNonZero(IBlockDevice device, long offset, int length, byte[] buffer)
    {
        ReadNaming(device, offset, buffer.AsSpan(0, length));
        int at = buffer.AsSpan(0, length).IndexOfAnyExcept((byte)0);
        return at < 0 ? null : offset + (at / Sector * Sector);
    }
}
