// One persistent dirty bitmap in memory while its image is open read-write: a bit per granule
// of the virtual disk, kept as the data clusters that store it (Bitmaps.fs has the arithmetic),
// each made only when one of its bits is first set, so a bitmap of a large, quiet disk costs
// almost nothing. Bit k lies in byte k / 8, bit k % 8 of the stored bytes, least significant first.
using System;
using System.Collections.Generic;
using System.Linq;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class DirtyBitmap
{
    private readonly int _clusterBits;

    // The data clusters with a bit set, by index in the bitmap's table: memory follows what is
    // dirty, not the disk's size.
    private readonly SortedDictionary<int, byte[]> _clusters = [];

    private DirtyBitmap(string name, int granularityBits, int clusterBits, ulong virtualSize, Bitmap? stored)
    {
        Name = name;
        GranularityBits = granularityBits;
        _clusterBits = clusterBits;
        VirtualSize = virtualSize;
        Stored = stored;
        TableEntries = (int)Bitmaps.tableEntriesFor(clusterBits, virtualSize, granularityBits);
    }

    public string Name { get; }

    public int GranularityBits { get; }

    public ulong VirtualSize { get; }

    /// <summary>Records writes (QEMU's auto flag).</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Marked in use when the image was opened: whoever had it open last did not store it, so
    /// its bits are unknown. It is kept on disk as it is and can only be removed, as in QEMU.
    /// </summary>
    public bool Inconsistent { get; private init; }

    /// <summary>The directory entry it was loaded from; null for a bitmap added since.</summary>
    public Bitmap? Stored { get; }

    /// <summary>A new, empty bitmap.</summary>
    public static DirtyBitmap Empty(string name, int granularityBits, int clusterBits, ulong virtualSize, bool enabled) =>
        new(name, granularityBits, clusterBits, virtualSize, null) { Enabled = enabled };

    /// <summary>
    /// The bitmap a directory entry describes, its bits read from the clusters its table names
    /// (none when it is in use: its data is not to be trusted). Each cluster held in memory is
    /// taken from <paramref name="budget"/>: the bitmaps of an image together hold no more than
    /// its file does, however hostile their tables.
    /// </summary>
    public static DirtyBitmap Load(IStorage storage, Bitmap entry, int clusterBits, ulong virtualSize, ref long budget)
    {
        bool inUse = (entry.Flags & Bitmaps.InUseFlag) != 0;
        var bitmap = new DirtyBitmap(entry.Name, entry.GranularityBits, clusterBits, virtualSize, entry)
        {
            Enabled = (entry.Flags & Bitmaps.AutoFlag) != 0,
            Inconsistent = inUse,
        };
        if (inUse)
        {
            return bitmap;
        }

        byte[] table = new byte[entry.TableEntries * 8UL];
        storage.Read((long)entry.TableOffset, table);
        ulong[] entries = Qcow.IO.TableEntries.Decode(table);
        for (int i = 0; i < entries.Length; i++)
        {
            BitmapTableEntry kind = Bitmaps.tableEntry(clusterBits, entries[i]);
            if (!kind.IsAllZeros && !kind.IsInvalidEntry && (budget -= 1L << clusterBits) < 0)
            {
                throw Broken(storage, entry, i, "its table names more data clusters than the file holds");
            }

            switch (kind)
            {
                case BitmapTableEntry.StoredAt at when at.offset >= (ulong)storage.Length:
                    throw Broken(storage, entry, i, $"its data cluster at 0x{at.offset:x} lies past the end of the file");
                case BitmapTableEntry.StoredAt at:
                    byte[] data = new byte[1 << clusterBits];
                    storage.Read((long)at.offset, data);
                    bitmap._clusters[i] = data;
                    break;
                case var e when e.IsAllOnes:
                    bitmap._clusters[i] = AllOnes(clusterBits);
                    break;
                case var e when e.IsInvalidEntry:
                    throw Broken(storage, entry, i, "Invalid argument");
            }
        }

        bitmap.TrimPastEnd();
        return bitmap;
    }

    /// <summary>A bitmap table entry Qcow cannot load, named by where it lies.</summary>
    private static Exception Broken(IStorage storage, Bitmap entry, int index, string why) =>
        FormatErrors.ToException(
            FormatError.NewInconsistent(Structure.HeaderExtension, entry.TableOffset + ((ulong)index * 8), $"Could not read bitmap '{entry.Name}' from image: {why}"),
            storage.Path);

    /// <summary>Sets the bits of every granule the guest byte range touches.</summary>
    public void Mark(ulong offset, ulong length)
    {
        (ulong first, ulong end) = Bitmaps.bitsOf(GranularityBits, VirtualSize, offset, length);
        SetBits(first, end);
    }

    public void Clear() => _clusters.Clear();

    /// <summary>Sets in this bitmap every granule the other one has dirty (granularities may differ).</summary>
    public void Merge(DirtyBitmap source)
    {
        // Read whole first: a bitmap may be merged into itself.
        foreach ((long offset, long length) in source.DirtyRuns().ToList())
        {
            Mark((ulong)offset, (ulong)length);
        }
    }

    /// <summary>Entries of the table that stores it: one per data cluster.</summary>
    public int TableEntries { get; }

    /// <summary>The bytes of data cluster <paramref name="index"/>; null when all its bits are clear.</summary>
    public byte[]? ClusterData(int index) =>
        _clusters.TryGetValue(index, out byte[]? bytes) && bytes.AsSpan().IndexOfAnyExcept((byte)0) >= 0 ? bytes : null;

    /// <summary>The dirty guest byte runs in order: whole granules, the last cut at the disk's end.</summary>
    public IEnumerable<(long Offset, long Length)> DirtyRuns()
    {
        ulong bits = Bitmaps.bitCount(VirtualSize, GranularityBits);
        ulong perCluster = Bitmaps.bitsPerCluster(_clusterBits);
        ulong start = 0;
        ulong end = 0;
        foreach ((int index, byte[] bytes) in _clusters)
        {
            ulong first = (ulong)index * perCluster;
            for (ulong bit = first; bit < Math.Min(bits, first + perCluster); bit++)
            {
                if ((bytes[(bit - first) / 8] & (1 << (int)(bit % 8))) == 0)
                {
                    continue;
                }

                if (bit != end)
                {
                    if (end > start)
                    {
                        yield return Run(start, end);
                    }

                    start = bit;
                }

                end = bit + 1;
            }
        }

        if (end > start)
        {
            yield return Run(start, end);
        }
    }

    private (long Offset, long Length) Run(ulong first, ulong end)
    {
        ulong offset = first << GranularityBits;
        return ((long)offset, (long)(Math.Min(VirtualSize, end << GranularityBits) - offset));
    }

    private void SetBits(ulong first, ulong end)
    {
        ulong perCluster = Bitmaps.bitsPerCluster(_clusterBits);
        for (ulong bit = first; bit < end;)
        {
            ulong cluster = bit / perCluster;
            ulong inCluster = bit % perCluster;
            ulong stop = Math.Min(end - bit, perCluster - inCluster) + inCluster;
            if (!_clusters.TryGetValue((int)cluster, out byte[]? bytes))
            {
                _clusters[(int)cluster] = bytes = new byte[1 << _clusterBits];
            }

            SetInCluster(bytes, inCluster, stop);
            bit += stop - inCluster;
        }
    }

    /// <summary>Sets bits [from, to) of one data cluster: partial bytes bit by bit, whole ones at once.</summary>
    private static void SetInCluster(byte[] bytes, ulong from, ulong to)
    {
        while (from < to && from % 8 != 0)
        {
            bytes[from / 8] |= (byte)(1 << (int)(from % 8));
            from++;
        }

        ulong wholeBytes = (to - from) / 8;
        bytes.AsSpan((int)(from / 8), (int)wholeBytes).Fill(0xff);
        for (from += wholeBytes * 8; from < to; from++)
        {
            bytes[from / 8] |= (byte)(1 << (int)(from % 8));
        }
    }

    /// <summary>An all-ones table entry covers its whole cluster; bits past the disk's end are not the bitmap's.</summary>
    private void TrimPastEnd()
    {
        ulong bits = Bitmaps.bitCount(VirtualSize, GranularityBits);
        ulong perCluster = Bitmaps.bitsPerCluster(_clusterBits);
        if (!_clusters.TryGetValue(TableEntries - 1, out byte[]? last))
        {
            return;
        }

        ulong used = bits - ((ulong)(TableEntries - 1) * perCluster);
        for (ulong b = used; b < perCluster; b++)
        {
            last[b / 8] &= (byte)~(1 << (int)(b % 8));
        }
    }

    private static byte[] AllOnes(int clusterBits)
    {
        byte[] bytes = new byte[1 << clusterBits];
        bytes.AsSpan().Fill(0xff);
        return bytes;
    }
}
