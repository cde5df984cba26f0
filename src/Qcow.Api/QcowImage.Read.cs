// Reading guest bytes, synchronously and asynchronously.
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
    /// Reads guest bytes at <paramref name="offset"/>: the table lookup runs at once, the file
    /// reads asynchronously, so many reads can be in flight together.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <inheritdoc cref="Read(long, Span{byte})"/>
    public async ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= Length)
        {
            return 0;
        }

        int n = (int)Math.Min(buffer.Length, Length - offset);
        await _device.ReadAsync(offset, buffer[..n], cancellationToken).ConfigureAwait(false);
        return n;
    }
}
