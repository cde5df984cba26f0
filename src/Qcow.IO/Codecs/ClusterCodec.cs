// Compressed clusters: raw deflate (compression_type 0, and every qcow v1 image) or zstd
// (compression_type 1). A stream must yield exactly one cluster; trailing bytes of its last
// sector may belong to the next stream and are ignored.
using System;
using System.IO;
using System.IO.Compression;
using ZstdSharp;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class ClusterCodec
{
    private readonly IStorage _storage;
    private readonly byte _compressionType;
    private readonly int _clusterSize;
    private byte[] _input = Array.Empty<byte>();
    private RawDeflateEncoder? _deflater;
    private Compressor? _zstd;

    public ClusterCodec(IStorage storage, byte compressionType, int clusterSize)
    {
        _storage = storage;
        _compressionType = compressionType;
        _clusterSize = clusterSize;
    }

    /// <summary>Compresses one cluster; returns the stream's length, or -1 when it does not fit in <paramref name="output"/>.</summary>
    public int Compress(ReadOnlySpan<byte> cluster, Span<byte> output)
    {
        if (_compressionType != 1)
        {
            return (_deflater ??= new RawDeflateEncoder()).Compress(cluster, output);
        }

        // QEMU compresses at zstd's default level.
        _zstd ??= new Compressor(3);
        return _zstd.TryWrap(cluster, output, out int written) ? written : -1;
    }

    /// <summary>Inflates the stream at <paramref name="host"/> into one cluster.</summary>
    public void Inflate(ulong host, uint length, Span<byte> cluster)
    {
        if (_input.Length < length)
        {
            _input = new byte[length];
        }

        int read = _storage.Read((long)host, _input.AsSpan(0, (int)length));
        using var compressed = new MemoryStream(_input, 0, read, writable: false);
        using Stream inflater = _compressionType == 1
            ? new DecompressionStream(compressed)
            : new DeflateStream(compressed, CompressionMode.Decompress);
        int total = 0;
        try
        {
            while (total < _clusterSize)
            {
                int n = inflater.Read(cluster[total.._clusterSize]);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }
        }
        // zstd reports a stream cut short with EndOfStreamException; the input is in memory
        // already, so that is bad data, never an I/O error.
        catch (Exception e) when (e is InvalidDataException or ZstdException or EndOfStreamException)
        {
            throw FormatErrors.ToException(FormatError.NewBadCompressedData(host, $"it does not inflate: {e.Message}"), _storage.Path);
        }

        if (total != _clusterSize)
        {
            throw FormatErrors.ToException(FormatError.NewBadCompressedData(host, $"it inflates to {total} bytes, not one cluster ({_clusterSize})"), _storage.Path);
        }
    }
}
