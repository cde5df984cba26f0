// A file's bytes in memory, behaving as FileStorage does at its edges (reads past the end return
// fewer bytes, negative offsets throw), with a limit on how far it may grow: a write past the
// limit, or any write when opened read-only, is refused and remembered, so that a test sees a
// shell that writes where it must not instead of a machine that runs out of memory.
using System;
using System.IO;
using Qcow.IO;

namespace Qcow.Examples.Reliability;

internal sealed class MemoryStorage : IStorage
{
    private byte[] _bytes;
    private long _length;

    /// <summary>A file holding <paramref name="bytes"/>, which it takes over (it does not copy them).</summary>
    public MemoryStorage(string path, byte[] bytes, bool canWrite = true, long limit = long.MaxValue)
    {
        Path = path;
        _bytes = bytes;
        _length = bytes.Length;
        CanWrite = canWrite;
        Limit = Math.Min(limit, Array.MaxLength);
    }

    public string Path { get; }

    public bool CanWrite { get; }

    public long Length => _length;

    /// <summary>The file may not grow past this many bytes.</summary>
    public long Limit { get; }

    /// <summary>The first write or resize refused, or null.</summary>
    public string? Refused { get; private set; }

    public int Read(long offset, Span<byte> buffer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= _length)
        {
            return 0;
        }

        int n = (int)Math.Min(_length - offset, buffer.Length);
        _bytes.AsSpan((int)offset, n).CopyTo(buffer);
        return n;
    }

    public void Write(long offset, ReadOnlySpan<byte> buffer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        Refuse(offset > Limit - buffer.Length, $"write of {buffer.Length} bytes at 0x{offset:x}");
        if (offset + buffer.Length > _length)
        {
            Resize(offset + buffer.Length);
        }

        buffer.CopyTo(_bytes.AsSpan((int)offset));
    }

    public void SetLength(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Refuse(length > Limit, $"resize to 0x{length:x} bytes");
        Resize(length);
    }

    public void Flush()
    {
    }

    public void Dispose()
    {
    }

    /// <summary>The file's bytes now.</summary>
    public byte[] ToArray() => _bytes.AsSpan(0, (int)_length).ToArray();

    private void Refuse(bool pastLimit, string what)
    {
        if (!CanWrite || pastLimit)
        {
            Refused ??= CanWrite ? $"{what} goes past the limit of 0x{Limit:x} bytes" : $"{what} to a file opened read-only";
            throw new IOException($"{Path}: {Refused}");
        }
    }

    /// <summary>Grows the buffer geometrically; a shrunk file's tail is cleared so that it reads back as zeros when the file grows again.</summary>
    private void Resize(long length)
    {
        if (length > _bytes.Length)
        {
            Array.Resize(ref _bytes, (int)Math.Min(Math.Max(length, _bytes.Length * 2L), Limit));
        }
        else if (length < _length)
        {
            _bytes.AsSpan((int)length, (int)(_length - length)).Clear();
        }

        _length = length;
    }
}
