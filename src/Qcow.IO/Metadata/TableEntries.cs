// A table of 64-bit big-endian entries (an L1 or standard L2 table) as values and back, for the
// code that rewrites whole tables outside the cache (a new metadata generation).
using System;
using System.Buffers.Binary;

namespace Qcow.IO;

internal static class TableEntries
{
    public static ulong[] Decode(ReadOnlySpan<byte> bytes)
    {
        ulong[] entries = new ulong[bytes.Length / 8];
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes[(i * 8)..]);
        }

        return entries;
    }

    public static byte[] Encode(ReadOnlySpan<ulong> entries)
    {
        byte[] bytes = new byte[entries.Length * 8];
        for (int i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), entries[i]);
        }

        return bytes;
    }
}
