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

        Qcow.Format.Bitmaps.locate(HeaderExtensionOffset(header), ext.directoryOffset, ext.directorySize, (ulong)storage.Length).OrThrow(storage.Path);
        byte[] directory = new byte[ext.directorySize];
        storage.Read((long)ext.directoryOffset, directory);
        var bitmaps = Qcow.Format.Bitmaps.decode(ext.directoryOffset, directory, ext.count).OrThrow(storage.Path);
        return new BitmapDirectory(ext.directoryOffset, ext.directorySize, [.. bitmaps]);
    }

    /// <summary>The extension area starts after the header proper; the exact place only names where to look.</summary>
    private static ulong HeaderExtensionOffset(Header header) => header.Version >= 3 ? header.HeaderLength : (ulong)Limits.HeaderV2Length;
}
