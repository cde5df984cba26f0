// Reading guest bytes, synchronously and asynchronously over one core.
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>Reads guest bytes at <paramref name="offset"/>; fewer than asked only at the end of the disk.</summary>
    /// <returns>Bytes read; 0 at or past the end.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative.</exception>
    /// <exception cref="QcowFormatException">Metadata on the way is malformed.</exception>
    /// <exception cref="ObjectDisposedException">The image is closed.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read.</exception>
    public int Read(long offset, Span<byte> buffer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= Length)
        {
            return 0;
        }

        int n = (int)Math.Min(buffer.Length, Length - offset);
        _device.Read(offset, buffer[..n]);
        return n;
    }

    /// <summary>
    /// Reads guest bytes at <paramref name="offset"/>. Positional file I/O completes
    /// synchronously, so this runs <see cref="Read(long, Span{byte})"/> after checking for cancellation.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled before the read started.</exception>
    /// <inheritdoc cref="Read(long, Span{byte})"/>
    public ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        try
        {
            return ValueTask.FromResult(Read(offset, buffer.Span));
        }
        catch (Exception e)
        {
            return ValueTask.FromException<int>(e);
        }
    }
}
