// Persistent dirty bitmaps (qcow2.rst "Bitmaps extension"), as far as Qcow reads them: the
// directory's entries and the clusters each bitmap holds, so that check counts them as QEMU does
// and info lists them. They count only while the autoclear "bitmaps" bit says they are valid.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Qcow.Format;

namespace Qcow.IO;

/// <param name="Name">The bitmap's name.</param>
/// <param name="TableOffset">Where the bitmap table lies.</param>
/// <param name="TableEntries">Its 8-byte entries: one data cluster each (0: all zeros; bit 0 alone: all ones).</param>
/// <param name="Flags">Bit 0 in-use, bit 1 auto.</param>
/// <param name="GranularityBits">Guest bytes per bit, as a power of two.</param>
internal sealed record Bitmap(string Name, ulong TableOffset, uint TableEntries, uint Flags, int GranularityBits);

internal sealed record BitmapDirectory(ulong Offset, ulong Bytes, IReadOnlyList<Bitmap> Bitmaps)
{
    private const int FixedEntryBytes = 24;
    private const ulong MaxDirectoryBytes = 64UL << 20;

    public static BitmapDirectory None { get; } = new(0, 0, []);

    /// <summary>The directory the header names, when the autoclear bit keeps it valid; <see cref="None"/> otherwise.</summary>
    public static BitmapDirectory Read(IStorage storage, Header header)
    {
        if ((header.AutoclearFeatures & HeaderModule.BitmapsBit) == 0
            || header.Extensions.OfType<HeaderExtension.Bitmaps>().FirstOrDefault() is not { } ext)
        {
            return None;
        }

        long at = HeaderExtensionOffset(header);
        if (ext.directorySize > MaxDirectoryBytes || ext.directoryOffset >= (ulong)storage.Length || ext.directorySize > (ulong)storage.Length - ext.directoryOffset)
        {
            throw new QcowFormatException(storage.Path, QcowFormatErrorKind.EntryOutOfRange, QcowStructure.HeaderExtension, at, "the bitmap directory lies past the end of the file");
        }

        byte[] directory = new byte[ext.directorySize];
        storage.Read((long)ext.directoryOffset, directory);
        var bitmaps = new List<Bitmap>();
        int position = 0;
        for (uint i = 0; i < ext.count; i++)
        {
            if (position + FixedEntryBytes > directory.Length)
            {
                throw Bad(storage, ext.directoryOffset, position, "the bitmap directory is shorter than its entries");
            }

            ReadOnlySpan<byte> e = directory.AsSpan(position);
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(e[18..]);
            uint extra = BinaryPrimitives.ReadUInt32BigEndian(e[20..]);
            long entryBytes = (FixedEntryBytes + (long)extra + nameSize + 7) & ~7L;
            if (position + entryBytes > directory.Length)
            {
                throw Bad(storage, ext.directoryOffset, position, "a bitmap directory entry runs past the directory");
            }

            bitmaps.Add(new Bitmap(
                Encoding.UTF8.GetString(e.Slice(FixedEntryBytes + (int)extra, nameSize)),
                BinaryPrimitives.ReadUInt64BigEndian(e),
                BinaryPrimitives.ReadUInt32BigEndian(e[8..]),
                BinaryPrimitives.ReadUInt32BigEndian(e[12..]),
                e[17]));
            position += (int)entryBytes;
        }

        return new BitmapDirectory(ext.directoryOffset, ext.directorySize, bitmaps);
    }

    /// <summary>The extension area starts after the header proper; the exact place only names where to look.</summary>
    private static long HeaderExtensionOffset(Header header) => header.Version >= 3 ? header.HeaderLength : Limits.HeaderV2Length;

    private static QcowFormatException Bad(IStorage storage, ulong directory, int position, string detail) =>
        new(storage.Path, QcowFormatErrorKind.Inconsistent, QcowStructure.HeaderExtension, (long)directory + position, detail);
}
