// A raw image: guest offset = file offset.
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow.IO;

internal sealed class RawDevice : IBlockDevice
{
    private static readonly byte[] s_zeroes = new byte[1 << 16];
    private readonly IStorage _storage;

    public RawDevice(IStorage storage)
    {
        _storage = storage;
    }

    public string Path => _storage.Path;

    public long AllocatedFileBytes => _storage.AllocatedBytes;

    public string FormatName => "raw";

    public long Length => _storage.Length;

    public bool CanWrite => _storage.CanWrite;

    public void Read(long offset, Span<byte> destination)
    {
        int n = offset < Length ? _storage.Read(offset, destination) : 0;
        destination[n..].Clear();
    }

    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        int n = offset < Length ? await _storage.ReadAsync(offset, destination, cancellationToken).ConfigureAwait(false) : 0;
        destination.Span[n..].Clear();
    }

    public void Write(long offset, ReadOnlySpan<byte> source) => _storage.Write(offset, source);

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken) => _storage.WriteAsync(offset, source, cancellationToken);

    public void WriteZeroes(long offset, long length, bool mayUnmap = false)
    {
        for (long done = 0; done < length;)
        {
            int n = (int)Math.Min(s_zeroes.Length, length - done);
            _storage.Write(offset + done, s_zeroes.AsSpan(0, n));
            done += n;
        }
    }

    /// <summary>Discard on a raw file keeps the data, which is one of the results discard allows.</summary>
    public void Discard(long offset, long length)
    {
    }

    public void Flush() => _storage.Flush();

    /// <summary>Data at its own offset, or zeros where the file has a hole, as QEMU's file driver reports it.</summary>
    public BlockStatus Status(long offset, long maxLength)
    {
        (bool data, long length) = _storage is FileStorage file ? file.Allocation(offset, maxLength) : (true, maxLength);
        return new BlockStatus(length, Present: true, Zero: !data, Data: data, HostOffset: offset, Depth: 0, File: Path);
    }

    public void Dispose() => _storage.Dispose();
}
