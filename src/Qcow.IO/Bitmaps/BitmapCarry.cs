// Persistent bitmaps through a resize: taken out of the image before the change and put back after it
// with their bits, cut at a smaller size or extended with clear bits, as QEMU's
// bdrv_dirty_bitmap_truncate leaves them. A crash in between loses them (as a crash loses
// bitmaps QEMU had marked in use), never the image's consistency.
using System;
using System.Collections.Generic;
using System.Linq;
using Qcow.Format;

namespace Qcow.IO;

internal static class BitmapCarry
{
    /// <summary>
    /// The image's bitmaps, loaded, and the header once they are dropped from it. A bitmap left
    /// in use stops the change before anything is written, as QEMU's qcow2_truncate_bitmaps_check does.
    /// </summary>
    public static (Header Header, IReadOnlyList<DirtyBitmap> Carried) TakeOut(IStorage storage, Header header)
    {
        IReadOnlyList<DirtyBitmap> carried = PersistentBitmaps.Load(storage, header).All;
        if (carried.FirstOrDefault(b => b.Inconsistent) is { } stale)
        {
            throw new InvalidOperationException($"Bitmap '{stale.Name}' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete this bitmap from disk");
        }

        return (carried.Count == 0 ? header : QcowDevice.DropBitmaps(storage, header), carried);
    }

    /// <summary>The carried bitmaps made anew in the image open read-write as <paramref name="device"/>; they are stored when it closes.</summary>
    public static void PutBack(QcowDevice device, IReadOnlyList<DirtyBitmap> carried)
    {
        device.ChangeBitmaps(set =>
        {
            foreach (DirtyBitmap b in carried)
            {
                set.Add(b.Name, 1UL << b.GranularityBits, b.Enabled);
                set.Find(b.Name)!.Merge(b);
            }
        });
    }
}
