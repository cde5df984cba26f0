// Resizing a closed image, as qemu-img resize does. Growing a qcow2 image whose L1 table has room
// in its clusters rewrites the header; otherwise a larger L1 table and refcounts that count it
// are written past everything in use, durable, before one header write switches to both.
// Shrinking discards the clusters past the new end, then the header drops the L1 entries past
// it, and the L2 tables they held are freed: a crash between costs leaks at worst.
using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Format;

namespace Qcow.IO;

internal static class ImageResizer
{
    /// <exception cref="InvalidOperationException">A shrink without <paramref name="shrink"/>, or a format that cannot be resized.</exception>
    /// <param name="path">The image.</param>
    /// <param name="format">Its format; null probes.</param>
    /// <param name="newSize">The new virtual size in bytes.</param>
    /// <param name="shrink">A smaller size is allowed (--shrink).</param>
    /// <param name="logger">Where the resize logs.</param>
    /// <param name="preallocation">qemu-img's --preallocation for the new area: off, metadata, falloc or full.</param>
    /// <param name="progress">Receives the percentage of the new area preallocated.</param>
    /// <param name="cancellationToken">Stops a preallocation between clusters.</param>
    public static void Resize(string path, string? format, long newSize, bool shrink, ILogger logger, string preallocation, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        string actual = format ?? ImageOpener.Probe(path);
        if (actual == "raw")
        {
            using FileStorage raw = FileStorage.Open(path, writable: true);
            RefuseShrink((ulong)raw.Length, newSize, shrink);
            raw.SetLength(newSize);
            raw.Flush();
            return;
        }

        if (actual != "qcow2")
        {
            throw new InvalidOperationException("Image format driver does not support resize");
        }

        // One handle, and so one lock, for the whole resize: no other process can open the image
        // between its steps.
        using FileStorage file = FileStorage.Open(path, writable: true);
        Header header = QcowDevice.PrepareForWriting(file, new DeviceOptions(true, false, 0, logger));
        RefuseShrink(header.Size, newSize, shrink);
        var l1Change = Maintenance.l1Change(header, (ulong)newSize);
        if (l1Change.IsError)
        {
            throw new InvalidOperationException(l1Change.ErrorValue);
        }

        (header, IReadOnlyList<DirtyBitmap> bitmaps) = BitmapCarry.TakeOut(file, header);

        if (newSize < (long)header.Size)
        {
            DiscardPast(file, newSize, header, logger);
        }

        long oldSize = (long)header.Size;
        Relayout(file, newSize, l1Change.ResultValue);
        if (newSize < oldSize)
        {
            TruncateAfterLastInUse(file);
        }

        if (newSize > oldSize && header.BackingFileName != null)
        {
            ZeroOverBacking(file, oldSize, newSize);
        }

        if (newSize > oldSize && preallocation != "off")
        {
            using QcowDevice device = ImageOpener.OpenQcow(file, Settings(openBackingFiles: false, cacheBytes: 32 << 20));
            bool writeZeros = preallocation is "full" or "falloc";
            if (writeZeros)
            {
                RehomeCutCluster(device, oldSize);
            }

            device.Preallocate(oldSize, writeZeros, progress, cancellationToken);
        }

        if (bitmaps.Count > 0)
        {
            using QcowDevice device = ImageOpener.OpenQcow(file, Settings(openBackingFiles: false, cacheBytes: 1 << 20));
            BitmapCarry.PutBack(device, bitmaps);
        }

        logger.LogInformation("{Image}: resized to {Size} bytes", path, newSize);
    }

    /// <summary>
    /// As QEMU's truncate with falloc or full preallocation: the cluster the old end cuts is
    /// given a new host cluster with the rest (its bytes copied over), so that all the new area
    /// is the space just allocated, rather than a metadata-only cluster that grows the file when
    /// written. The old cluster is released once the new mapping is durable (and may then take
    /// one of the new area's clusters, where QEMU leaves it free inside a longer file).
    /// </summary>
    private static void RehomeCutCluster(QcowDevice device, long oldSize)
    {
        long cs = device.Layout.ClusterSize;
        long start = oldSize / cs * cs;
        if (start == oldSize || !device.Status(start, cs).Data)
        {
            return;
        }

        // The new end may cut the same cluster: only what the disk now holds of it is written.
        byte[] cluster = new byte[Math.Min(cs, device.Length - start)];
        device.Read(start, cluster.AsSpan(0, (int)(oldSize - start)));
        device.Drop(start, cluster.Length);
        device.Write(start, cluster);
        device.Flush();
    }

    /// <summary>
    /// As QEMU's truncate: when the backing file is longer than the old size, the new area is
    /// zeroed, or the backing file's bytes there would show through.
    /// </summary>
    private static void ZeroOverBacking(FileStorage file, long oldSize, long newSize)
    {
        using QcowDevice device = ImageOpener.OpenQcow(file, Settings(openBackingFiles: true, cacheBytes: 1 << 20));
        if (device.Backing is { } backing && backing.Length > oldSize)
        {
            device.WriteZeroes(oldSize, newSize - oldSize);
            device.Flush();
        }
    }

    /// <summary>The header (and, when it must grow past its clusters, the L1 table) for the new size, as the core decided.</summary>
    private static void Relayout(FileStorage file, long newSize, L1Change change)
    {
        Header header = QcowDevice.ReadHeader(file);
        switch (change)
        {
            case L1Change.KeepL1 keep:
                KeepL1(file, header, newSize, keep.l1Size);
                break;
            case L1Change.GrowInPlace grow:
                // The spare entries of the L1 table's last cluster must read as unallocated before the header says they count.
                file.Write((long)header.L1TableOffset + header.L1Size * 8L, new byte[(grow.l1Size - header.L1Size) * 8L]);
                file.Flush();
                WriteHeader(file, HeaderModule.resized(header, (ulong)newSize, header.L1TableOffset, grow.l1Size));
                break;
            case L1Change.MoveL1 move:
                GrowL1(file, header, newSize, move.l1Size);
                break;
        }
    }

    /// <summary>
    /// As QEMU after a shrink: the file ends after the last cluster with a refcount, so that the
    /// space of the clusters the shrink freed at the end is given back. A refcount that cannot be
    /// read keeps the file as long as it is.
    /// </summary>
    private static void TruncateAfterLastInUse(FileStorage file)
    {
        Header header = QcowDevice.ReadHeader(file);
        var refcounts = new StoredRefcounts(file, header);
        int bits = header.ClusterBits;
        ulong end = ((ulong)file.Length + (1UL << bits) - 1) >> bits;
        while (end > 1 && refcounts.Get(end - 1) == 0)
        {
            end--;
        }

        if ((long)(end << bits) < file.Length)
        {
            file.SetLength((long)(end << bits));
            file.Flush();
        }
    }

    private static void RefuseShrink(ulong size, long newSize, bool shrink)
    {
        if (Maintenance.refuseShrink(size, (ulong)newSize, shrink) is { IsError: true } refused)
        {
            throw new InvalidOperationException(refused.ErrorValue);
        }
    }

    /// <summary>Discards every whole cluster past the new end, through the device, in flush order.</summary>
    private static void DiscardPast(FileStorage file, long newSize, Header header, ILogger logger)
    {
        using QcowDevice device = ImageOpener.OpenQcow(file, Settings(openBackingFiles: false, cacheBytes: 1 << 20));
        long cs = device.Layout.ClusterSize;
        long from = (newSize + cs - 1) / cs * cs;
        if (from < device.Length)
        {
            device.Drop(from, device.Length - from);
        }

        device.Flush();
        logger.LogDebug("{Image}: discarded 0x{From:x} to 0x{To:x} before shrinking", file.Path, from, header.Size);
    }

    /// <summary>How a step of the resize opens the image as a device over the held file; what a shrink frees goes back to the file system, as QEMU always gives it back.</summary>
    private static OpenSettings Settings(bool openBackingFiles, long cacheBytes) =>
        new(true, false, cacheBytes, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, OpenBackingFiles: openBackingFiles, PassDiscards: true);

    /// <summary>
    /// The same L1 table, or a shorter one: the header drops the L1 entries past the new end;
    /// the L2 tables they held are freed, then the entries zeroed.
    /// </summary>
    private static void KeepL1(FileStorage file, Header header, long newSize, uint l1Size)
    {
        WriteHeader(file, HeaderModule.resized(header, (ulong)newSize, header.L1TableOffset, l1Size));
        if (l1Size < header.L1Size)
        {
            RefcountRepair.FreeLeaks(file, QcowDevice.ReadHeader(file));
            file.Write((long)header.L1TableOffset + l1Size * 8L, new byte[(header.L1Size - l1Size) * 8L]);
            file.Flush();
        }
    }

    /// <summary>A larger L1 table past everything in use, refcounts that count it after it, then one header write, as the core laid them out.</summary>
    private static void GrowL1(FileStorage file, Header header, long newSize, uint l1Size)
    {
        ReferenceCounter references = ReferenceCounter.Count(file, header, refcountStructures: false);
        L1Move move = Maintenance.moveL1(header, references.Counts, RefcountRepair.FreeFrom(references, header.ClusterBits), (ulong)newSize, l1Size).OrThrow(file.Path);
        byte[] l1 = new byte[move.L1Bytes];
        file.Read((long)header.L1TableOffset, l1.AsSpan(0, (int)header.L1Size * 8));
        file.Write((long)move.L1Offset, l1);
        RefcountRepair.Write(file, move.Refcounts);
        WriteHeader(file, move.Header);
    }

    private static void WriteHeader(FileStorage file, Header header)
    {
        file.Write(0, HeaderEncode.encode(header).OrThrow(file.Path));
        file.Flush();
    }
}
