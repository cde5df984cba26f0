// Raw deflate (RFC 1951) for compressed clusters QEMU can read: QEMU inflates with a 4 KiB window
// (inflateInit2 with -12 window bits), and .NET's deflater looks back up to 32 KiB, so clusters
// are compressed here instead: LZ77 matches no further back than 4096 bytes, coded in one block
// with the fixed Huffman codes.
using System;

namespace Qcow.IO;

internal sealed class RawDeflateEncoder
{
    private const int Window = 4096;
    private const int MinMatch = 3;
    private const int MaxMatch = 258;
    private const int HashBits = 14;
    private const int MaxChain = 64;

    private static readonly int[] s_lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
    private static readonly int[] s_lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    private static readonly int[] s_distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073];
    private static readonly int[] s_distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10];

    private readonly int[] _head = new int[1 << HashBits];
    private readonly int[] _previous = new int[Window];

    /// <summary>
    /// Compresses <paramref name="input"/> into <paramref name="output"/>; returns the compressed
    /// length, or -1 when it does not fit (the caller then stores the data uncompressed).
    /// </summary>
    public int Compress(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var bits = new BitWriter(output);
        bits.Write(1, 1);
        bits.Write(1, 2);
        Array.Fill(_head, -1);
        for (int at = 0; at < input.Length && !bits.Overflowed;)
        {
            (int length, int distance) = LongestMatch(input, at);
            if (length >= MinMatch)
            {
                WriteLength(ref bits, length);
                WriteDistance(ref bits, distance);
                for (int i = 0; i < length; i++)
                {
                    Insert(input, at + i);
                }

                at += length;
            }
            else
            {
                WriteSymbol(ref bits, input[at]);
                Insert(input, at);
                at++;
            }
        }

        WriteSymbol(ref bits, 256);
        return bits.Finish();
    }

    private (int Length, int Distance) LongestMatch(ReadOnlySpan<byte> input, int at)
    {
        if (at + MinMatch > input.Length)
        {
            return (0, 0);
        }

        int best = 0;
        int bestDistance = 0;
        int limit = Math.Min(MaxMatch, input.Length - at);
        int candidate = _head[Hash(input, at)];
        for (int chain = 0; candidate >= 0 && at - candidate <= Window && chain < MaxChain; chain++)
        {
            int n = input.Slice(candidate, limit).CommonPrefixLength(input.Slice(at, limit));
            if (n > best)
            {
                best = n;
                bestDistance = at - candidate;
                if (n == limit)
                {
                    break;
                }
            }

            int next = _previous[candidate % Window];
            candidate = next < candidate ? next : -1;
        }

        return (best, bestDistance);
    }

    private void Insert(ReadOnlySpan<byte> input, int at)
    {
        if (at + MinMatch > input.Length)
        {
            return;
        }

        int hash = Hash(input, at);
        _previous[at % Window] = _head[hash];
        _head[hash] = at;
    }

    private static int Hash(ReadOnlySpan<byte> input, int at) =>
        (int)((((uint)input[at] << 16) | ((uint)input[at + 1] << 8) | input[at + 2]) * 2654435761u >> (32 - HashBits));

    /// <summary>A literal/length symbol in the fixed code (RFC 1951, 3.2.6), most significant bit first.</summary>
    private static void WriteSymbol(ref BitWriter bits, int symbol)
    {
        (int code, int length) = symbol switch
        {
            < 144 => (0x30 + symbol, 8),
            < 256 => (0x190 + symbol - 144, 9),
            < 280 => (symbol - 256, 7),
            _ => (0xc0 + symbol - 280, 8),
        };
        bits.Write(Reverse(code, length), length);
    }

    private static void WriteLength(ref BitWriter bits, int length)
    {
        int i = length == MaxMatch ? s_lengthBase.Length - 1 : Array.BinarySearch(s_lengthBase, length);
        i = i >= 0 ? i : ~i - 1;
        WriteSymbol(ref bits, 257 + i);
        bits.Write(length - s_lengthBase[i], s_lengthExtra[i]);
    }

    private static void WriteDistance(ref BitWriter bits, int distance)
    {
        int i = Array.BinarySearch(s_distanceBase, distance);
        i = i >= 0 ? i : ~i - 1;
        bits.Write(Reverse(i, 5), 5);
        bits.Write(distance - s_distanceBase[i], s_distanceExtra[i]);
    }

    private static int Reverse(int code, int length)
    {
        int reversed = 0;
        for (int i = 0; i < length; i++)
        {
            reversed = (reversed << 1) | ((code >> i) & 1);
        }

        return reversed;
    }

    /// <summary>Bits least significant first, as deflate packs them; notes when the output is full.</summary>
    private ref struct BitWriter
    {
        private readonly Span<byte> _output;
        private ulong _pending;
        private int _count;
        private int _written;

        public BitWriter(Span<byte> output)
        {
            _output = output;
        }

        public bool Overflowed { get; private set; }

        public void Write(int value, int count)
        {
            _pending |= (ulong)(uint)value << _count;
            _count += count;
            while (_count >= 8)
            {
                Emit((byte)_pending);
                _pending >>= 8;
                _count -= 8;
            }
        }

        public int Finish()
        {
            if (_count > 0)
            {
                Emit((byte)_pending);
            }

            return Overflowed ? -1 : _written;
        }

        private void Emit(byte b)
        {
            if (_written < _output.Length)
            {
                _output[_written++] = b;
            }
            else
            {
                Overflowed = true;
            }
        }
    }
}
