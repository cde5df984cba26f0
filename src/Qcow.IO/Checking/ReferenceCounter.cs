// Counts the references an image's tables hold to each host cluster, as QEMU's check counts them
// (calculate_refcounts): header, L1 tables, L2 tables and data clusters per path, compressed
// streams per cluster they touch, the snapshot table, every snapshot's tree, persistent bitmaps,
// and on request the refcount structures. A fold over the table walk (ImageWalk); on the way it
// finds what QEMU's check finds in those tables (reserved bits, misaligned offsets, references
// past the end of the file) and the active tree's figures.
using System;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class ReferenceCounter : IWalkVisitor
{
    private readonly int _clusterBits;
    private readonly long _clusterSize;
    private readonly long _fileLength;
    private readonly uint _refcountMax;
    private readonly EntryFormat _format;
    private readonly bool _extended;
    private readonly bool _refcountStructures;
    private long _nextContiguous;

    private ReferenceCounter(IStorage storage, Header header, bool refcountStructures)
    {
        _refcountStructures = refcountStructures;
        _clusterBits = header.ClusterBits;
        _clusterSize = 1L << _clusterBits;
        _fileLength = storage.Length;
        _format = HeaderModule.entryFormat(header);
        _extended = HeaderModule.geometry(header).L2EntryBytes == 16;
        int refcountBits = 1 << header.RefcountOrder;
        _refcountMax = refcountBits >= 32 ? uint.MaxValue : (1u << refcountBits) - 1;
        Clusters = (_fileLength + _clusterSize - 1) >> _clusterBits;
        // A reference may reach less than one cluster past the end of the file (QEMU allows a
        // last cluster that is only partly there), so one cluster more than the file holds.
        Counts = new uint[Clusters + 1];
    }

    /// <summary>References per host cluster; index = cluster.</summary>
    public uint[] Counts { get; }

    /// <summary>Clusters to compare: those of the file, and the one past it if anything references it.</summary>
    public long Clusters { get; private set; }

    /// <summary>The first cluster with more references than the refcount width holds, if any (its count stops at the maximum).</summary>
    public long? FirstOverflow { get; private set; }

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
        var counter = new ReferenceCounter(storage, header, refcountStructures);
        ImageWalk.Walk(storage, header, WalkScope.Everything, counter);
        return counter;
    }

    /// <summary>One item of the walk: the references it holds, and what is wrong with it.</summary>
    public void Visit(in Walked item)
    {
        switch (item.Item)
        {
            case WalkItem.HeaderCluster or WalkItem.L1Table or WalkItem.SnapshotTable or WalkItem.BitmapDirectory or WalkItem.BitmapTable:
                Add((long)item.Offset, (long)item.Length);
                break;
            case WalkItem.L1Entry:
                VisitL1Entry(item.Entry);
                break;
            case WalkItem.L2Entry:
                VisitL2Entry(item, active: item.Tree == 0);
                break;
            case WalkItem.BitmapEntry:
                VisitBitmapEntry(item.Entry);
                break;
            case WalkItem.RefcountTable when _refcountStructures:
                Add((long)item.Offset, (long)item.Length);
                break;
            case WalkItem.RefcountTableEntry when _refcountStructures:
                VisitRefcountTableEntry(item.Index, item.Entry);
                break;
        }
    }

    /// <summary>check_refcounts_l1's part for one entry: its L2 table is referenced, and must be aligned.</summary>
    private void VisitL1Entry(ulong entry)
    {
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

        // check_refcounts_l2 counts fragmentation within one table.
        _nextContiguous = 0;
    }

    /// <summary>check_refcounts_l2 for one entry, with the fragmentation figures for the active tree.</summary>
    private void VisitL2Entry(in Walked item, bool active)
    {
        ulong entry = item.Entry;
        if (L2Entry.hasReservedBits(entry))
        {
            Corrupt($"ERROR found l2 entry with reserved bits set: {entry:x}");
        }

        if (_extended)
        {
            CheckBitmap(item.Type, entry, item.Bitmap);
        }

        if (item.Type == ClusterType.Compressed)
        {
            AddCompressed(entry, active);
        }
        else if (item.Type is ClusterType.Normal or ClusterType.ZeroAllocated)
        {
            AddAllocated(entry, item.Type, active);
        }
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
                FirstOverflow ??= c;
                Corrupt($"ERROR: overflow cluster offset=0x{c << _clusterBits:x}");
                continue;
            }

            Counts[c]++;
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

    /// <summary>qcow2_check_bitmaps_refcounts for one entry of a bitmap's table: the data cluster it names.</summary>
    private void VisitBitmapEntry(ulong entry)
    {
        switch (Qcow.Format.Bitmaps.tableEntry(_clusterBits, entry))
        {
            case BitmapTableEntry.StoredAt stored:
                Add((long)stored.offset, _clusterSize);
                break;
            case var e when e.IsInvalidEntry:
                Corruptions++;
                break;
        }
    }

    /// <summary>check_refblocks for one entry: the refcount block it names must be referenced exactly once.</summary>
    private void VisitRefcountTableEntry(int i, ulong entry)
    {
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

    private void Corrupt(string message)
    {
        Corruptions++;
        Messages.Add(message);
    }
}
