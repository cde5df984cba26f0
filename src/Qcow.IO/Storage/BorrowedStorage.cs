// A file someone else holds open, lent to a device: disposing the device leaves it open, so that
// an offline change can open the image as a device several times over one handle (one lock).
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow.IO;

internal sealed class BorrowedStorage(IStorage file) : IStorage
{
    public string Path => file.Path;

    public bool CanWrite => file.CanWrite;

    public long Length => file.Length;

    public int Read(long offset, Span<byte> buffer) => file.Read(offset, buffer);

    public ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) => file.ReadAsync(offset, buffer, cancellationToken);

    public void Write(long offset, ReadOnlySpan<byte> buffer) => file.Write(offset, buffer);

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) => file.WriteAsync(offset, buffer, cancellationToken);

    public void SetLength(long length) => file.SetLength(length);

    public void Discard(long offset, long length) => file.Discard(offset, length);

    public void Announce(QcowDriverEvent driverEvent) => file.Announce(driverEvent);

    public void Flush() => file.Flush();

    /// <summary>The file stays open: it is its holder's to close.</summary>
    public void Dispose()
    {
    }
}
