// The LUKS (version 1) header a qcow2 image with LUKS encryption keeps in its crypto header
// area: the parameters qemu-img info shows. Nothing here decrypts; the key slots stay sealed.
using System;
using System.Buffers.Binary;
using System.Text;

namespace Qcow.IO;

/// <param name="Active">The slot holds a key.</param>
/// <param name="Iterations">PBKDF2 iterations (meaningful when active).</param>
/// <param name="KeyOffset">Where the slot's key material starts, in bytes from the header.</param>
/// <param name="Stripes">Anti-forensic stripes (meaningful when active).</param>
internal sealed record LuksSlot(bool Active, uint Iterations, long KeyOffset, uint Stripes);

internal sealed record LuksHeader(string CipherName, string CipherMode, string HashSpec, long PayloadOffset, uint KeyBytes, uint MasterKeyIterations, string Uuid, LuksSlot[] Slots)
{
    private const int Length = 592;
    private const uint SlotEnabled = 0x00AC71F3;
    private static readonly byte[] s_magic = [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xba, 0xbe];

    /// <exception cref="QcowFormatException">The area does not start with the LUKS magic.</exception>
    public static LuksHeader Read(IStorage storage, ulong offset)
    {
        byte[] h = new byte[Length];
        if (offset > (ulong)storage.Length || storage.Read((long)offset, h) != Length || !h.AsSpan(0, 6).SequenceEqual(s_magic))
        {
            throw new QcowFormatException(storage.Path, QcowFormatErrorKind.Inconsistent, QcowStructure.HeaderExtension, (long)offset, "the crypto header is not a LUKS header");
        }

        var slots = new LuksSlot[8];
        for (int i = 0; i < slots.Length; i++)
        {
            ReadOnlySpan<byte> s = h.AsSpan(208 + (i * 48));
            slots[i] = new LuksSlot(
                BinaryPrimitives.ReadUInt32BigEndian(s) == SlotEnabled,
                BinaryPrimitives.ReadUInt32BigEndian(s[4..]),
                BinaryPrimitives.ReadUInt32BigEndian(s[40..]) * 512L,
                BinaryPrimitives.ReadUInt32BigEndian(s[44..]));
        }

        return new LuksHeader(
            Text(h, 8, 32),
            Text(h, 40, 32),
            Text(h, 72, 32),
            BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(104)) * 512L,
            BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(108)),
            BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(164)),
            Text(h, 168, 40),
            slots);
    }

    private static string Text(byte[] h, int at, int length)
    {
        ReadOnlySpan<byte> field = h.AsSpan(at, length);
        int end = field.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
    }
}
