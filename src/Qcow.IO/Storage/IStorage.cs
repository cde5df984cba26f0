// Positional I/O on the bytes of one file: what the shell reads and writes images through,
// so that tests can put a fault-injecting layer underneath. Reads may run while other threads
// read or write the same storage (a device reads data outside its lock).
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow.IO;

internal interface IStorage : IDisposable
{
    /// <summary>The file's name, for error messages.</summary>
    string Path { get; }

    bool CanWrite { get; }

    long Length { get; }

    /// <summary>The bytes the storage takes where it is kept (a sparse file's allocated blocks); by default its length.</summary>
    long AllocatedBytes => Length;

    /// <summary>Reads at most <c>buffer.Length</c> bytes; fewer only at the end of the file.</summary>
    int Read(long offset, Span<byte> buffer);

    /// <summary>Reads as <see cref="Read"/> does, asynchronously where the storage can (a file does).</summary>
    ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<int>(cancellationToken) : ValueTask.FromResult(Read(offset, buffer.Span));

    void Write(long offset, ReadOnlySpan<byte> buffer);

    /// <summary>Writes as <see cref="Write"/> does, asynchronously where the storage can (a file does).</summary>
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(offset, buffer.Span);
        return ValueTask.CompletedTask;
    }

    void SetLength(long length);

    /// <summary>The driver reached an event (QEMU's BLKDBG_EVENT on the image's file): a fault-injecting storage may arm a fault.</summary>
    void Announce(QcowDriverEvent driverEvent)
    {
    }

    /// <summary>Gives the range's space back where the storage can (a hole punched in a file); it then reads as zeros or as before.</summary>
    void Discard(long offset, long length)
    {
    }

    /// <summary>Makes every completed write durable (fsync).</summary>
    void Flush();
}
