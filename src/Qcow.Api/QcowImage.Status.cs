// Block status: what each run of the guest disk is (allocated, zeros, data, where it lies),
// through the backing chain, one query at a time or as qemu-img map's merged extents.
using System;
using System.Collections.Generic;
using System.Threading;
using Qcow.IO;

namespace Qcow;

/// <summary>A run of guest bytes that share one block status, as qemu-img map reports it.</summary>
/// <param name="Offset">The run's first guest byte.</param>
/// <param name="Length">The run's length in bytes.</param>
/// <param name="Present">The layer at <paramref name="Depth"/> allocates the bytes (QEMU's "present").</param>
/// <param name="Zero">The bytes read as zeros.</param>
/// <param name="Data">The bytes are stored data (possibly compressed).</param>
/// <param name="HostOffset">Where the bytes lie in <paramref name="File"/>; null when nowhere one can name (compressed, zero, unallocated).</param>
/// <param name="Depth">The chain layer that answered: 0 is the image itself, 1 its backing file, and so on.</param>
/// <param name="File">The file holding the bytes at <paramref name="HostOffset"/>, or null.</param>
public readonly record struct QcowExtent(long Offset, long Length, bool Present, bool Zero, bool Data, long? HostOffset, int Depth, string? File)
{
    internal static QcowExtent Of(long offset, BlockStatus s) =>
        new(offset, s.Length, s.Present, s.Zero, s.Data, s.HasOffset ? s.HostOffset : null, s.Depth, s.File);
}

public sealed partial class QcowImage
{
    /// <summary>
    /// The block status of the bytes from <paramref name="offset"/> on: one run, at most
    /// <paramref name="maxLength"/> bytes and never past the end of the disk, that shares one status.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The offset is outside the disk, or the length is not positive.</exception>
    /// <exception cref="QcowFormatException">Metadata on the way is malformed.</exception>
    public QcowExtent GetBlockStatus(long offset, long maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(offset, Length);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        return QcowExtent.Of(offset, _device.Status(offset, Math.Min(maxLength, Length - offset)));
    }

    /// <summary>
    /// The extents of a range as qemu-img map prints them: neighbours with the same flags, depth
    /// and file, whose host offsets continue, merged into one.
    /// </summary>
    /// <param name="start">The first guest byte.</param>
    /// <param name="length">Bytes to map; null maps to the end of the disk.</param>
    /// <param name="cancellationToken">Stops the enumeration between extents.</param>
    /// <exception cref="ArgumentOutOfRangeException">The start is negative.</exception>
    /// <exception cref="QcowFormatException">Metadata on the way is malformed, or the image is encrypted (mapping encrypted data is not supported yet).</exception>
    public IEnumerable<QcowExtent> Map(long start = 0, long? length = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        RefuseEncrypted();
        long end = length is { } n ? Math.Min(Length, start + n) : Length;
        return Merged(start, end, cancellationToken);
    }

    private IEnumerable<QcowExtent> Merged(long start, long end, CancellationToken cancellationToken)
    {
        QcowExtent? current = null;
        for (long offset = start; offset < end;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var next = QcowExtent.Of(offset, _device.Status(offset, end - offset));
            if (current is { } c && Mergeable(c, next))
            {
                current = c with { Length = c.Length + next.Length };
            }
            else
            {
                if (current is { } done)
                {
                    yield return done;
                }

                current = next;
            }

            offset += next.Length;
        }

        if (current is { } last)
        {
            yield return last;
        }
    }

    /// <summary>qemu-img's entry_mergeable: the same flags, depth and file, and host offsets that continue.</summary>
    private static bool Mergeable(QcowExtent a, QcowExtent b) =>
        a.Zero == b.Zero && a.Data == b.Data && a.Depth == b.Depth && a.Present == b.Present
        && a.File == b.File && a.HostOffset.HasValue == b.HostOffset.HasValue
        && (a.HostOffset is not { } host || host + a.Length == b.HostOffset);

    private void RefuseEncrypted()
    {
        if (_device is QcowDevice { IsEncrypted: true })
        {
            throw FormatErrors.Unsupported(Path, "mapping encrypted guest data");
        }
    }
}
