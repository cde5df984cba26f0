// Persistent dirty bitmaps of an image open read-write, as qemu-img bitmap changes them: add,
// remove, clear, enable, disable, merge; and which guest bytes a bitmap holds dirty. While the
// image is open every write, zero write and discard sets the bits of the enabled bitmaps; the
// image stores them when it is disposed.
using System;
using System.Collections.Generic;
using System.Linq;
using Qcow.IO;

namespace Qcow;

/// <summary>How a new persistent bitmap is made.</summary>
public sealed record QcowBitmapOptions
{
    /// <summary>Guest bytes per bit: a power of two from 512 bytes to 2 GiB; null for QEMU's default (the cluster size, kept between 4 KiB and 64 KiB).</summary>
    public long? Granularity { get; init; }

    /// <summary>The bitmap starts disabled: it records no writes until enabled (qemu-img bitmap --disable).</summary>
    public bool Disabled { get; init; }
}

/// <summary>A run of guest bytes a dirty bitmap holds dirty: written, zeroed or discarded while it was enabled.</summary>
public readonly record struct QcowDirtyExtent(long Offset, long Length);

public sealed partial class QcowImage
{
    /// <summary>The persistent bitmaps as this open keeps them (changes since open included); open read-only, as the image holds them.</summary>
    /// <exception cref="InvalidOperationException">The image is not qcow2.</exception>
    public IReadOnlyList<QcowBitmapInfo> Bitmaps =>
        Read(all => all.Select(b => new QcowBitmapInfo { Name = b.Name, Granularity = 1L << b.GranularityBits, InUse = b.Inconsistent, Auto = b.Enabled }).ToList());

    /// <summary>Adds an empty persistent bitmap, as qemu-img bitmap --add.</summary>
    /// <exception cref="InvalidOperationException">A bitmap of that name exists, the image holds QEMU's maximum of 65535, or it is not a qcow2 image open read-write.</exception>
    /// <exception cref="ArgumentException">The granularity is not a power of two of at least 512 bytes, too large, or too fine for the disk; or the name is longer than 1023 bytes.</exception>
    /// <exception cref="NotSupportedException">The image is qcow2 version 2 (compat 0.10) or qcow v1, which cannot hold bitmaps.</exception>
    public void AddBitmap(string name, QcowBitmapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        options ??= new QcowBitmapOptions();
        long? granularity = options.Granularity;
        if (granularity is <= 0)
        {
            throw new ArgumentException("Granularity must be power of 2 and at least 512", nameof(options));
        }

        Change(b => b.Add(name, (ulong?)granularity, !options.Disabled));
    }

    /// <summary>Removes a persistent bitmap, in use or not, as qemu-img bitmap --remove; its clusters are freed when the image is disposed.</summary>
    /// <exception cref="KeyNotFoundException">No bitmap has that name.</exception>
    public void RemoveBitmap(string name) => Change(b => b.Remove(name));

    /// <summary>Clears every bit, as qemu-img bitmap --clear.</summary>
    /// <exception cref="KeyNotFoundException">No bitmap has that name.</exception>
    /// <exception cref="InvalidOperationException">The bitmap was left in use: its bits are unknown, and it can only be removed.</exception>
    public void ClearBitmap(string name) => Change(b => b.Usable(name).Clear());

    /// <summary>The bitmap records writes from now on, as qemu-img bitmap --enable.</summary>
    /// <exception cref="KeyNotFoundException">No bitmap has that name.</exception>
    /// <exception cref="InvalidOperationException">The bitmap was left in use.</exception>
    public void EnableBitmap(string name) => Change(b => b.Usable(name).Enabled = true);

    /// <summary>The bitmap records no more writes, as qemu-img bitmap --disable.</summary>
    /// <exception cref="KeyNotFoundException">No bitmap has that name.</exception>
    /// <exception cref="InvalidOperationException">The bitmap was left in use.</exception>
    public void DisableBitmap(string name) => Change(b => b.Usable(name).Enabled = false);

    /// <summary>
    /// Sets in bitmap <paramref name="target"/> every bit set in bitmap <paramref name="source"/>,
    /// as qemu-img bitmap --merge; the source lies in this image or, given, in <paramref name="sourceImage"/>
    /// (a qcow2 image open read-only or read-write).
    /// </summary>
    /// <exception cref="KeyNotFoundException">Either bitmap does not exist.</exception>
    /// <exception cref="InvalidOperationException">Either bitmap was left in use, or the disks differ in size.</exception>
    public void MergeBitmap(string target, string source, QcowImage? sourceImage = null)
    {
        if (sourceImage is null || sourceImage == this)
        {
            Change(b => b.Usable(target).Merge(b.Usable(source)));
            return;
        }

        // The other image's bits, read under its own lock, then merged under this one's.
        (ulong size, List<(long Offset, long Length)> runs) = sourceImage.Read(all =>
        {
            DirtyBitmap from = PersistentBitmaps.Usable(all, source);
            return (from.VirtualSize, from.DirtyRuns().ToList());
        });
        Change(b =>
        {
            DirtyBitmap into = b.Usable(target);
            if (size != into.VirtualSize)
            {
                throw new InvalidOperationException("Bitmaps are incompatible and can't be merged");
            }

            foreach ((long offset, long length) in runs)
            {
                into.Mark((ulong)offset, (ulong)length);
            }
        });
    }

    /// <summary>The guest byte runs bitmap <paramref name="name"/> holds dirty, in order, each whole granules (the last cut at the disk's end), as they are at the call.</summary>
    /// <exception cref="KeyNotFoundException">No bitmap has that name.</exception>
    /// <exception cref="InvalidOperationException">The bitmap was left in use: its bits are unknown.</exception>
    public IReadOnlyList<QcowDirtyExtent> DirtyExtents(string name) =>
        Read(all => PersistentBitmaps.Usable(all, name).DirtyRuns().Select(r => new QcowDirtyExtent(r.Offset, r.Length)).ToList());

    private T Read<T>(Func<IReadOnlyList<DirtyBitmap>, T> read) =>
        (Qcow ?? throw new InvalidOperationException($"{Path}: only qcow2 images have persistent bitmaps")).ReadBitmaps(read);

    private void Change(Action<PersistentBitmaps> change)
    {
        if (Qcow is not { } q || !CanWrite)
        {
            throw new InvalidOperationException($"{Path}: persistent bitmaps are changed through a read-write open of a qcow2 image");
        }

        q.ChangeBitmaps(change);
    }
}
