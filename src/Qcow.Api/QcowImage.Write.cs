// Writing guest bytes, zeros and discards, synchronously and asynchronously over one core.
using System;
using System.Threading;
using System.Threading.Tasks;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>Writes guest bytes at <paramref name="offset"/>; the range must lie inside the disk.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is negative or past the end of the disk.</exception>
    /// <exception cref="InvalidOperationException">The image is open read-only.</exception>
    /// <exception cref="QcowFormatException">Metadata on the way is malformed.</exception>
    /// <exception cref="ObjectDisposedException">The image is closed.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be written.</exception>
    public void Write(long offset, ReadOnlySpan<byte> buffer)
    {
        CheckRange(offset, buffer.Length);
        _device.Write(offset, buffer);
        FlushIfWriteThrough();
    }

    /// <summary>
    /// Writes guest bytes: to clusters the image already holds (and alone owns), as asynchronous
    /// file writes, so that many can be in flight; a write that allocates, copies or changes the
    /// tables runs its planning and table updates synchronously first, as <see cref="Write"/> does.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <inheritdoc cref="Write(long, ReadOnlySpan{byte})"/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, buffer.Length);
        await _device.WriteAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
        FlushIfWriteThrough();
    }

    /// <summary>
    /// Makes a range read as zeros, as QEMU does: on qcow2 version 3 a cluster the range covers
    /// (or one it covers in part, the rest of which reads as zeros and stores nothing) gets the
    /// ZERO flag; version 2 without a backing file frees such a cluster; anything else is written
    /// with zeros. With <paramref name="mayUnmap"/>, version 3 frees the clusters it zeroes too.
    /// </summary>
    /// <param name="offset">The guest offset of the range.</param>
    /// <param name="length">The range's length in bytes.</param>
    /// <param name="mayUnmap">Whether zeroed clusters may be freed (qemu-io's write -z -u).</param>
    public void WriteZeroes(long offset, long length, bool mayUnmap = false)
    {
        CheckRange(offset, length);
        _device.WriteZeroes(offset, length, mayUnmap);
        FlushIfWriteThrough();
    }

    /// <summary>
    /// Frees the whole clusters inside a range, as QEMU's discard does: they read as zeros
    /// afterwards. Partial clusters, qcow v1 images and version 2 images over a backing file
    /// (which has no way to hide the backing file's data) are left as they are.
    /// </summary>
    /// <inheritdoc cref="Write(long, ReadOnlySpan{byte})"/>
    public void Discard(long offset, long length)
    {
        CheckRange(offset, length);
        _device.Discard(offset, length);
        FlushIfWriteThrough();
    }

    /// <summary>
    /// Writes whole clusters compressed, as qemu-io's write -c does: the range starts on a cluster
    /// boundary and is whole clusters, or ends with the disk. A cluster whose compressed form is no
    /// smaller is stored uncompressed, as QEMU stores it.
    /// </summary>
    /// <exception cref="NotSupportedException">The image is raw, which has no compressed clusters.</exception>
    /// <exception cref="ArgumentException">The range is not whole clusters.</exception>
    /// <inheritdoc cref="Write(long, ReadOnlySpan{byte})"/>
    public void WriteCompressed(long offset, ReadOnlySpan<byte> buffer)
    {
        if (_device is not QcowDevice q)
        {
            throw new NotSupportedException($"{Path}: a raw image has no compressed clusters");
        }

        CheckRange(offset, buffer.Length);
        int cs = q.Layout.ClusterSize;
        if (offset % cs != 0 || (buffer.Length % cs != 0 && offset + buffer.Length != Length))
        {
            throw new ArgumentException($"compressed writes are whole clusters of {cs} bytes (the last may end with the disk)", nameof(offset));
        }

        for (int at = 0; at < buffer.Length; at += cs)
        {
            q.WriteCompressed(offset + at, buffer.Slice(at, Math.Min(cs, buffer.Length - at)));
        }

        FlushIfWriteThrough();
    }

    /// <summary>QcowOpenOptions.WriteThrough: a write is durable before it returns.</summary>
    private void FlushIfWriteThrough()
    {
        if (WriteThrough)
        {
            _device.Flush();
        }
    }

    private void CheckRange(long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length - offset);
    }

    /// <summary>
    /// Makes every completed write durable, on a thread-pool thread: the ordered file syncs a
    /// flush is made of have no asynchronous form on Linux, so, as FileStream.FlushAsync does,
    /// they block a pool thread instead of the caller.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled before the flush started.</exception>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        await Task.Run(Flush, cancellationToken).ConfigureAwait(false);
}
