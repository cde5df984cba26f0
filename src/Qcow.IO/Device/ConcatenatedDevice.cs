// Several source images read as one disk, one after another, as qemu-img convert reads several
// sources. The parts stay their opener's: disposing the whole leaves them open.
using System;
using System.Collections.Generic;
using System.Linq;
namespace Qcow.IO;

internal sealed class ConcatenatedDevice : IBlockDevice
{
    private readonly IReadOnlyList<IBlockDevice> _parts;
    private readonly long[] _starts;

    public ConcatenatedDevice(IReadOnlyList<IBlockDevice> parts)
    {
        _parts = parts;
        _starts = new long[parts.Count + 1];
        for (int i = 0; i < parts.Count; i++)
        {
            _starts[i + 1] = _starts[i] + parts[i].Length;
        }
    }

    public string Path => _parts[0].Path;

    public long AllocatedFileBytes => _parts.Sum(p => p.AllocatedFileBytes);

    public string FormatName => _parts[0].FormatName;

    public long Length => _starts[^1];

    public bool CanWrite => false;

    public void Read(long offset, Span<byte> destination)
    {
        while (destination.Length > 0)
        {
            if (offset >= Length)
            {
                destination.Clear();
                return;
            }

            int part = PartAt(offset);
            int n = (int)Math.Min(destination.Length, _starts[part + 1] - offset);
            _parts[part].Read(offset - _starts[part], destination[..n]);
            offset += n;
            destination = destination[n..];
        }
    }

    public BlockStatus Status(long offset, long maxLength)
    {
        int part = PartAt(offset);
        return _parts[part].Status(offset - _starts[part], Math.Min(maxLength, _starts[part + 1] - offset));
    }

    public void Write(long offset, ReadOnlySpan<byte> source) => throw new NotSupportedException("the sources of a conversion are read-only");

    public void WriteZeroes(long offset, long length, bool mayUnmap = false) => throw new NotSupportedException("the sources of a conversion are read-only");

    public void Discard(long offset, long length) => throw new NotSupportedException("the sources of a conversion are read-only");

    public void Flush()
    {
    }

    public void Dispose()
    {
    }

    private int PartAt(long offset)
    {
        int i = Array.BinarySearch(_starts, offset);
        int part = i >= 0 ? i : ~i - 1;
        // Empty parts share their start with the next one: the part that holds the byte is the last of them.
        while (part + 1 < _parts.Count && _starts[part + 1] <= offset)
        {
            part++;
        }

        return part;
    }
}
