// Counts the references an image's tables hold to each host cluster, as QEMU's check counts them
// (calculate_refcounts): header, L1 tables, L2 tables and data clusters per path, compressed
// streams per cluster they touch, the snapshot table, every snapshot's tree, persistent bitmaps,
// and on request the refcount structures. On the way it finds what QEMU's check finds in those tables (reserved
// bits, misaligned offsets, references past the end of the file) and the active tree's figures.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class ReferenceCounter
{
    private readonly IStorage _storage;
    private readonly Header _header;
    private readonly int _clusterBits;
    private readonly long _clusterSize;
    private readonly long _fileLength;
    private readonly uint _refcountMax;
    private readonly EntryFormat _format;
    private long _nextContiguous;
    private readonly int _entryBytes;

    // One buffer for every L2 table read: a hostile L1 table can name tens of thousands of them.
    private readonly byte[] _l2;

    private ReferenceCounter(IStorage storage, Header header)
    {
        _storage = storage;
        _header = header;
        _clusterBits = header.ClusterBits;
        _clusterSize = 1L << _clusterBits;
        _fileLength = storage.Length;
        _format = HeaderModule.entryFormat(header);
        _entryBytes = HeaderModule.geometry(header).L2EntryBytes;
        int refcountBits = 1 << header.RefcountOrder;
        _refcountMax = refcountBits >= 32 ? uint.MaxValue : (1u << refcountBits) - 1;
        Clusters = (_fileLength + _clusterSize - 1) >> _clusterBits;
        // A reference may reach less than one cluster past the end of the file (QEMU allows a
        // last cluster that is only partly there), so one cluster more than the file holds.
        Counts = new uint[Clusters + 1];
        _l2 = new byte[_clusterSize];
    }

    /// <summary>References per host cluster; index = cluster.</summary>
    public uint[] Counts { get; }

    /// <summary>Clusters to compare: those of the file, and the one past it if anything references it.</summary>
    public long Clusters { get; private set; }

    /// <summary>Problems found in the tables, each counted as QEMU counts it.</summary>
    public long Corruptions { get; private set; }

    /// <summary>
    /// A refcount table entry or block is broken (reserved bits, misaligned, referenced more than
    /// once): only new refcount structures repair that, as QEMU's check decides.
    /// </summary>
    public bool NeedsRebuild { get; private set; }

    /// <summary>What was found, one line each, in qemu-img check's words.</summary>
    public List<string> Messages { get; } = new();

    /// <summary>One past the highest cluster any reference names, inside the file or not.</summary>
    public ulong ClustersReferenced { get; private set; }

    /// <summary>Allocated entries in the active L2 tables.</summary>
    public long Allocated { get; private set; }

    /// <summary>Active allocated clusters not host-contiguous with their predecessor in the same table.</summary>
    public long Fragmented { get; private set; }

    /// <summary>Active compressed clusters.</summary>
    public long Compressed { get; private set; }

    /// <summary>Counts every reference of a qcow2 image that has no external data file.</summary>
    /// <param name="storage">The image file.</param>
    /// <param name="header">Its header as it is on disk.</param>
    /// <param name="refcountStructures">Count the refcount table and blocks too (check does; a rebuild, which replaces them, does not).</param>
    public static ReferenceCounter Count(IStorage storage, Header header, bool refcountStructures)
    {
        var counter = new ReferenceCounter(storage, header);
        counter.Add(0, counter._clusterSize);
        counter.AddTree(header.L1TableOffset, header.L1Size, active: true);
        SnapshotTable snapshots = SnapshotTable.Read(storage, header);
        foreach (Snapshot snapshot in snapshots.Entries)
        {
            counter.AddTree(snapshot.L1TableOffset, snapshot.L1Size, active: false);
        }

        counter.Add((long)header.SnapshotsOffset, (long)snapshots.Bytes);
        counter.AddBitmaps(BitmapDirectory.Read(storage, header));
        if (refcountStructures)
        {
            counter.Add((long)header.RefcountTableOffset, (long)header.RefcountTableClusters << counter._clusterBits);
            counter.AddRefcountBlocks();
        }

        return counter;
    }

    /// <summary>qcow2_inc_refcounts_imrt: one reference to each cluster a byte range touches.</summary>
    private void Add(long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }

        long first = offset >> _clusterBits;
        long last = (offset + length - 1) >> _clusterBits;
        ClustersReferenced = Math.Max(ClustersReferenced, (ulong)last + 1);
        if (offset + length - _fileLength >= _clusterSize)
        {
            Corrupt($"ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x{offset:x} size 0x{length:x}");
            return;
        }

        for (long c = first; c <= last; c++)
        {
            Clusters = Math.Max(Clusters, c + 1);
            if (Counts[c] == _refcountMax)
            {
                Corrupt($"ERROR: overflow cluster offset=0x{c << _clusterBits:x}");
                continue;
            }

            Counts[c]++;
        }
    }

    /// <summary>check_refcounts_l1: an L1 table, each L2 table it names, each cluster those name.</summary>
    private void AddTree(ulong l1Offset, uint l1Size, bool active)
    {
        Add((long)l1Offset, (long)l1Size * 8);
        byte[] l1 = new byte[l1Size * 8L];
        ReadZeroFilled((long)l1Offset, l1);
        for (int i = 0; i < (int)l1Size; i++)
        {
            ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan(i * 8));
            if (entry == 0)
            {
                continue;
            }

            if ((entry & L1Entry.ReservedMask) != 0)
            {
                Corrupt($"ERROR found L1 entry with reserved bits set: {entry:x}");
            }

            long table = (long)(entry & L1Entry.OffsetMask);
            Add(table, _clusterSize);
            if ((table & (_clusterSize - 1)) != 0)
            {
                Corrupt($"ERROR l2_offset={table:x}: Table is not cluster aligned; L1 entry corrupted");
            }

            AddL2Table(table, active);
        }
    }

    /// <summary>check_refcounts_l2, with the fragmentation figures for the active tree.</summary>
    private void AddL2Table(long table, bool active)
    {
        byte[] l2 = _l2;
        ReadZeroFilled(table, l2);
        _nextContiguous = 0;
        for (int j = 0; j < l2.Length / _entryBytes; j++)
        {
            ulong raw = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * _entryBytes));
            // With subclusters the first word's bit 0 means nothing: the bitmap says what is zero.
            ulong entry = _entryBytes == 16 ? raw & ~L2Entry.ZeroFlag : raw;
            ClusterType type = L2Entry.clusterType(_format, entry);
            if (L2Entry.hasReservedBits(raw))
            {
                Corrupt($"ERROR found l2 entry with reserved bits set: {raw:x}");
            }

            if (_entryBytes == 16)
            {
                CheckBitmap(type, entry, BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan((j * 16) + 8)));
            }

            if (type == ClusterType.Compressed)
            {
                AddCompressed(entry, active);
            }
            else if (type is ClusterType.Normal or ClusterType.ZeroAllocated)
            {
                AddAllocated(entry, type, active);
            }
        }
    }

    /// <summary>check_refcounts_l2's subcluster bitmap checks.</summary>
    private void CheckBitmap(ClusterType type, ulong entry, ulong bitmap)
    {
        if (type == ClusterType.Compressed && bitmap != 0)
        {
            Corrupt($"ERROR compressed cluster with non-zero subcluster allocation bitmap, entry=0x{entry:x}");
        }
        else if (type is ClusterType.Normal && ((bitmap >> 32) & bitmap) != 0)
        {
            Corrupt($"ERROR offset={entry & L2Entry.OffsetMask:x}: Allocated cluster has corrupted subcluster allocation bitmap");
        }
        else if (type == ClusterType.Unallocated && (bitmap & 0xffffffffUL) != 0)
        {
            Corrupt("ERROR: Unallocated cluster has non-zero subcluster allocation map");
        }
    }

    private void AddCompressed(ulong entry, bool active)
    {
        var (host, length) = L2Entry.compressedStream(_clusterBits, entry);
        if ((entry & L2Entry.CopiedFlag) != 0)
        {
            Corrupt($"ERROR: coffset=0x{host:x}: copied flag must never be set for compressed clusters");
        }

        Add((long)host, length);
        if (active)
        {
            // Compressed clusters count as fragmented by nature, as qemu-img counts them.
            Allocated++;
            Compressed++;
            Fragmented++;
        }
    }

    private void AddAllocated(ulong entry, ClusterType type, bool active)
    {
        long host = (long)(entry & L2Entry.OffsetMask);
        if ((host & (_clusterSize - 1)) != 0)
        {
            string what = type == ClusterType.ZeroAllocated ? "Preallocated" : "Data";
            Corrupt($"ERROR offset={host:x}: {what} cluster is not properly aligned; L2 entry corrupted.");
        }

        if (active)
        {
            Allocated++;
            if (_nextContiguous != 0 && host != _nextContiguous)
            {
                Fragmented++;
            }

            _nextContiguous = host + _clusterSize;
        }

        // Data in an external data file is not this file's to count.
        if (!_format.HasExternalData)
        {
            Add(host, _clusterSize);
        }
    }

    /// <summary>qcow2_check_bitmaps_refcounts: the directory, each bitmap's table and the data clusters it names.</summary>
    private void AddBitmaps(BitmapDirectory directory)
    {
        const ulong reserved = 0xff000000000001feUL;
        const ulong allOnes = 1;
        Add((long)directory.Offset, (long)directory.Bytes);
        foreach (Bitmap bitmap in directory.Bitmaps)
        {
            long tableBytes = bitmap.TableEntries * 8L;
            Add((long)bitmap.TableOffset, tableBytes);
            if ((long)bitmap.TableOffset >= _fileLength || tableBytes > _fileLength - (long)bitmap.TableOffset)
            {
                continue;
            }

            byte[] table = new byte[tableBytes];
            ReadZeroFilled((long)bitmap.TableOffset, table);
            for (int i = 0; i < bitmap.TableEntries; i++)
            {
                ulong entry = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8));
                ulong offset = entry & L2Entry.OffsetMask;
                if ((entry & reserved) != 0 || (offset != 0 && ((entry & allOnes) != 0 || (offset & (ulong)(_clusterSize - 1)) != 0)))
                {
                    Corruptions++;
                    continue;
                }

                if (offset != 0)
                {
                    Add((long)offset, _clusterSize);
                }
            }
        }
    }

    /// <summary>check_refblocks: each refcount block the table names, which must be referenced exactly once.</summary>
    private void AddRefcountBlocks()
    {
        byte[] table = new byte[_header.RefcountTableClusters << _clusterBits];
        ReadZeroFilled((long)_header.RefcountTableOffset, table);
        for (int i = 0; i < table.Length / 8; i++)
        {
            ulong entry = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8));
            ulong block = entry & ~Refcount.TableReservedMask;
            if ((entry & Refcount.TableReservedMask) != 0)
            {
                Corrupt($"ERROR refcount table entry {i} has reserved bits set");
                NeedsRebuild = true;
            }
            else if ((block & (ulong)(_clusterSize - 1)) != 0)
            {
                Corrupt($"ERROR refcount block {i} is not cluster aligned; refcount table entry corrupted");
                NeedsRebuild = true;
            }
            else if (block >> _clusterBits >= (ulong)Clusters)
            {
                Corrupt($"ERROR refcount block {i} is outside image");
            }
            else if (block != 0)
            {
                Add((long)block, _clusterSize);
                uint references = Counts[block >> _clusterBits];
                if (references != 1)
                {
                    Corrupt($"ERROR refcount block {i} refcount={references}");
                    NeedsRebuild = true;
                }
            }
        }
    }

    private void Corrupt(string message)
    {
        Corruptions++;
        Messages.Add(message);
    }

    /// <summary>Reads bytes as QEMU reads them from a file: what lies past its end reads as zeros.</summary>
    private void ReadZeroFilled(long offset, byte[] bytes)
    {
        Array.Clear(bytes);
        if (offset < _fileLength)
        {
            _storage.Read(offset, bytes);
        }
    }
}
