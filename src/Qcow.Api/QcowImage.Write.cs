// Writing guest bytes, zeros and discards, synchronously and asynchronously over one core.
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>Writes guest bytes at <paramref name="offset"/>; the range must lie inside the disk.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is negative or past the end of the disk.</exception>
    /// <exception cref="InvalidOperationException">The image is open read-only.</exception>
    /// <exception cref="QcowFormatException">Metadata on the way is malformed.</exception>
    /// <exception cref="ObjectDisposedException">The image is closed.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be written.</exception>
    public void Write(long offset, ReadOnlySpan<byte> buffer) => _device.Write(offset, buffer);

    /// <summary>Writes guest bytes; completes synchronously after checking for cancellation.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled before the write started.</exception>
    /// <inheritdoc cref="Write(long, ReadOnlySpan{byte})"/>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            Write(offset, buffer.Span);
            return ValueTask.CompletedTask;
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }

    /// <summary>
    /// Makes a range read as zeros: on qcow2 version 3 whole clusters get the ZERO flag; elsewhere
    /// zeros are written, as QEMU does.
    /// </summary>
    /// <inheritdoc cref="Write(long, ReadOnlySpan{byte})"/>
    public void WriteZeroes(long offset, long length) => _device.WriteZeroes(offset, length);

    /// <summary>
    /// Frees the whole clusters inside a range, as QEMU's discard does: on version 3 they read as
    /// zeros afterwards, on version 2 as the backing file (or zeros). Partial clusters and qcow v1
    /// images are left as they are.
    /// </summary>
    /// <inheritdoc cref="Write(long, ReadOnlySpan{byte})"/>
    public void Discard(long offset, long length) => _device.Discard(offset, length);

    /// <summary>Makes every completed write durable; completes synchronously.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled before the flush started.</exception>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            Flush();
            return ValueTask.CompletedTask;
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }
}
