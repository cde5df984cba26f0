// QEMU's null-co and null-aio drivers as a stream: a disk of a given size that reads as zeros
// (QEMU leaves the buffer alone unless read-zeroes is on; zeros are what it then holds here) and
// takes writes without keeping them.
using System;
using System.IO;

namespace Qcow.Cli;

internal sealed class NullStream(long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => true;

    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => _position = value;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = (int)Math.Clamp(length - _position, 0, buffer.Length);
        buffer[..n].Clear();
        _position += n;
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => _position += count;

    public override void Write(ReadOnlySpan<byte> buffer) => _position += buffer.Length;

    public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => length + offset,
    };

    public override void SetLength(long value) => throw new NotSupportedException("a null device keeps its size");

    public override void Flush()
    {
    }
}
