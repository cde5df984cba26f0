// QEMU's block layer cutting zero writes and discards to a node's limits, for blkdebug standing
// as a filter on top (its align, opt-write-zero, max-write-zero, opt-discard and max-discard
// options). blkdebug turns down zero writes shorter than their alignment, which the block layer
// then writes as zeros, and drops discards shorter than the request alignment: so the limits
// decide which clusters end up zeroed, written or freed, and are carried out here as QEMU does.
using System;

namespace Qcow.Cli;

/// <param name="Align">The request alignment (align), at least 1.</param>
/// <param name="WriteZeroAlign">The preferred zero-write alignment (opt-write-zero), 0 for none.</param>
/// <param name="MaxWriteZero">The longest zero write (max-write-zero), 0 for no limit.</param>
/// <param name="DiscardAlign">The preferred discard alignment (opt-discard), 0 for none.</param>
/// <param name="MaxDiscard">The longest discard (max-discard), 0 for no limit.</param>
/// <param name="MaxTransfer">The longest read or write (max-transfer), 0 for no limit.</param>
internal sealed record RequestLimits(long Align, long WriteZeroAlign, long MaxWriteZero, long DiscardAlign, long MaxDiscard, long MaxTransfer)
{
    private const long LargestRequest = int.MaxValue & ~511L;

    public void WriteZeroes(QcowImage image, long offset, long bytes, bool mayUnmap)
    {
        long align = Math.Max(WriteZeroAlign, Align);
        long max = AlignDown(Math.Min(MaxWriteZero > 0 ? MaxWriteZero : int.MaxValue, int.MaxValue), align);
        long head = offset % align;
        long tail = (offset + bytes) % align;
        while (bytes > 0)
        {
            long num = bytes;
            if (head != 0)
            {
                // Up to the first aligned offset, in one request.
                num = Math.Min(Math.Min(bytes, MaxTransfer > 0 ? MaxTransfer : LargestRequest), align - head);
                head = (head + num) % align;
            }
            else if (tail != 0 && num > align)
            {
                num -= tail;
            }

            num = Math.Min(num, max);
            if (num < align)
            {
                // blkdebug refuses it; the block layer writes the zeros as data.
                image.Write(offset, new byte[num]);
            }
            else
            {
                image.WriteZeroes(offset, num, mayUnmap);
            }

            offset += num;
            bytes -= num;
        }
    }

    public void Discard(QcowImage image, long offset, long bytes)
    {
        long align = Math.Max(DiscardAlign, Align);
        long max = AlignDown(Math.Min(MaxDiscard > 0 ? MaxDiscard : LargestRequest, LargestRequest), align);
        long head = offset % align;
        long tail = (offset + bytes) % align;
        while (bytes > 0)
        {
            long num = bytes;
            if (head != 0)
            {
                num = Math.Min(bytes, align - head);
                if (num % Align != 0)
                {
                    num %= Align;
                }

                head = (head + num) % align;
            }
            else if (tail != 0)
            {
                if (num > align)
                {
                    num -= tail;
                }
                else if (tail % Align != 0 && tail > Align)
                {
                    tail %= Align;
                    num -= tail;
                }
            }

            num = Math.Min(num, max);
            if (num >= Align)
            {
                // Shorter than the request alignment, blkdebug lets it go unperformed.
                image.Discard(offset, num);
            }

            offset += num;
            bytes -= num;
        }
    }

    private static long AlignDown(long value, long align) => value / align * align;
}
