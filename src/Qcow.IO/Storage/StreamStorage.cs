// IStorage on a Stream a caller hands over: an image stored somewhere Qcow does not open itself,
// or inside another image's virtual disk (QEMU's format over format). A Stream has one position,
// so each read and write seeks and transfers under one lock; there are no image locks to take.
using System;
using System.IO;

namespace Qcow.IO;

internal sealed class StreamStorage : IStorage
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly object _gate = new();

    public StreamStorage(Stream stream, string name, bool writable, bool leaveOpen)
    {
        if (!stream.CanSeek || !stream.CanRead)
        {
            throw new ArgumentException("An image's stream must be readable and seekable", nameof(stream));
        }

        if (writable && !stream.CanWrite)
        {
            throw new ArgumentException("A read-write open needs a writable stream", nameof(stream));
        }

        _stream = stream;
        Path = name;
        CanWrite = writable;
        _leaveOpen = leaveOpen;
    }

    public string Path { get; }

    public bool CanWrite { get; }

    public long Length
    {
        get
        {
            lock (_gate)
            {
                return _stream.Length;
            }
        }
    }

    public int Read(long offset, Span<byte> buffer)
    {
        lock (_gate)
        {
            _stream.Position = offset;
            int done = 0;
            while (done < buffer.Length)
            {
                int n = _stream.Read(buffer[done..]);
                if (n == 0)
                {
                    break;
                }

                done += n;
            }

            return done;
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> buffer)
    {
        lock (_gate)
        {
            _stream.Position = offset;
            _stream.Write(buffer);
        }
    }

    public void SetLength(long length)
    {
        lock (_gate)
        {
            _stream.SetLength(length);
        }
    }

    public void Flush()
    {
        lock (_gate)
        {
            _stream.Flush();
        }
    }

    public void Dispose()
    {
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }
}
