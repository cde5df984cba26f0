// A virtual disk: what an image is to its overlay, to convert, and to the public API.
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow.IO;

internal interface IBlockDevice : IDisposable
{
    /// <summary>The file behind the device.</summary>
    string Path { get; }

    /// <summary>The format's name as qemu-img spells it: qcow2, qcow or raw.</summary>
    string FormatName { get; }

    /// <summary>Virtual size in bytes.</summary>
    long Length { get; }

    /// <summary>The bytes the file behind the device takes on disk (qemu-img's "disk size").</summary>
    long AllocatedFileBytes { get; }

    bool CanWrite { get; }

    /// <summary>Reads guest bytes; bytes past <see cref="Length"/> read as zeros.</summary>
    void Read(long offset, Span<byte> destination);

    /// <summary>Reads as <see cref="Read"/> does, with the file reads asynchronous where the device can make them so.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Read(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    void Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Writes as <see cref="Write"/> does, with the file writes asynchronous where the device can make them so.</summary>
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(offset, source.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Makes the range read as zeros; <paramref name="mayUnmap"/> lets the image free what it zeroes.</summary>
    void WriteZeroes(long offset, long length, bool mayUnmap = false);

    void Discard(long offset, long length);

    void Flush();

    /// <summary>The status of the bytes from <paramref name="offset"/> on, through the backing chain; at most <paramref name="maxLength"/> bytes.</summary>
    BlockStatus Status(long offset, long maxLength);
}
