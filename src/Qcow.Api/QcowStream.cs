// A seekable Stream over an image's virtual disk; its async reads are the image's asynchronous ones.
using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow;

internal sealed class QcowStream : Stream
{
    private readonly QcowImage _image;
    private readonly bool _closeImage;
    private long _position;

    public QcowStream(QcowImage image, bool closeImage)
    {
        _image = image;
        _closeImage = closeImage;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _closeImage)
        {
            _image.Dispose();
        }

        base.Dispose(disposing);
    }

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => _image.CanWrite;

    public override long Length => _image.Length;

    public override long Position
    {
        get => _position;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = _image.Read(_position, buffer);
        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await _image.ReadAsync(_position, buffer, cancellationToken).ConfigureAwait(false);
        _position += n;
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _image.WriteAsync(_position, buffer, cancellationToken).ConfigureAwait(false);
        _position += buffer.Length;
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => _image.FlushAsync(cancellationToken).AsTask();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _image.Write(_position, buffer);
        _position += buffer.Length;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => Length + offset,
        };
        return _position;
    }

    public override void Flush() => _image.Flush();

    public override void SetLength(long value) => throw new NotSupportedException("resizing an image through its stream is not supported");
}
