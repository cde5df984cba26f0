// Persistent dirty bitmaps (qcow2.rst "Bitmaps extension"), as far as Qcow reads them: the
// directory, so that check counts their clusters as QEMU does and info lists them. They count
// only while the autoclear "bitmaps" bit says they are valid.
using System.Collections.Generic;
using System.Linq;
using Qcow.Format;

namespace Qcow.IO;

/// <summary>The bitmap directory the header names, with its entries decoded by the core (Bitmaps.fs).</summary>
internal sealed record BitmapDirectory(ulong Offset, ulong Bytes, IReadOnlyList<Bitmap> Bitmaps)
{
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
        if (ext.directorySize > Qcow.Format.Bitmaps.MaxDirectoryBytes || ext.directoryOffset >= (ulong)storage.Length || ext.directorySize > (ulong)storage.Length - ext.directoryOffset)
        {
            throw new QcowFormatException(storage.Path, QcowFormatErrorKind.EntryOutOfRange, QcowStructure.HeaderExtension, at, "the bitmap directory lies past the end of the file");
        }

        byte[] directory = new byte[ext.directorySize];
        storage.Read((long)ext.directoryOffset, directory);
        var decoded = Qcow.Format.Bitmaps.decode(directory, ext.count);
        if (decoded.IsError)
        {
            (int position, string detail) = decoded.ErrorValue;
            throw new QcowFormatException(storage.Path, QcowFormatErrorKind.Inconsistent, QcowStructure.HeaderExtension, (long)ext.directoryOffset + position, detail);
        }

        return new BitmapDirectory(ext.directoryOffset, ext.directorySize, [.. decoded.ResultValue]);
    }

    /// <summary>The extension area starts after the header proper; the exact place only names where to look.</summary>
    private static long HeaderExtensionOffset(Header header) => header.Version >= 3 ? header.HeaderLength : Limits.HeaderV2Length;
}
