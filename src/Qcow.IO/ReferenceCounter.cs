// Counts the references an image's tables hold to each host cluster, as QEMU's check counts them
// (calculate_refcounts): header, L1 tables, L2 tables and data clusters per path, compressed
// streams per cluster they touch, the snapshot table and every snapshot's tree.
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
    private readonly long _fileLength;

    private ReferenceCounter(IStorage storage, Header header)
    {
        _storage = storage;
        _header = header;
        _clusterBits = header.ClusterBits;
        _fileLength = storage.Length;
        Counts = new uint[(_fileLength + (1L << _clusterBits) - 1) >> _clusterBits];
    }

    /// <summary>References per host cluster; index = cluster. Clusters past the end of the file are not counted.</summary>
    public uint[] Counts { get; }

    /// <summary>References the tables hold that point past the end of the file.</summary>
    public long PastEnd { get; private set; }

    /// <summary>One past the highest cluster any reference names, inside the file or not.</summary>
    public ulong ClustersReferenced { get; private set; }

    /// <summary>Counts every reference of a qcow2 image that has no external data file.</summary>
    public static ReferenceCounter Count(IStorage storage, Header header)
    {
        var counter = new ReferenceCounter(storage, header);
        counter.Add(0, 1UL << header.ClusterBits);
        counter.AddTree(header.L1TableOffset, header.L1Size);
        foreach (Snapshot snapshot in counter.Snapshots())
        {
            counter.AddTree(snapshot.L1TableOffset, snapshot.L1Size);
        }

        return counter;
    }

    /// <summary>Counts the refcount table's clusters and every block it names, as check does.</summary>
    public void AddRefcountStructures()
    {
        ulong cs = 1UL << _clusterBits;
        Add(_header.RefcountTableOffset, _header.RefcountTableClusters * cs);
        byte[] table = ReadWithin(_header.RefcountTableOffset, (int)(_header.RefcountTableClusters * cs));
        for (int i = 0; i < table.Length / 8; i++)
        {
            ulong block = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8)) & ~Refcount.TableReservedMask;
            if (block != 0)
            {
                Add(block, cs);
            }
        }
    }

    private void Add(ulong offset, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong first = offset >> _clusterBits;
        ulong last = (offset + length - 1) >> _clusterBits;
        ClustersReferenced = Math.Max(ClustersReferenced, last + 1);
        for (ulong c = first; c <= last; c++)
        {
            if (c < (ulong)Counts.Length)
            {
                Counts[c]++;
            }
            else
            {
                PastEnd++;
            }
        }
    }

    /// <summary>An L1 table, each L2 table it names, each cluster those name.</summary>
    private void AddTree(ulong l1Offset, uint l1Size)
    {
        Add(l1Offset, (ulong)l1Size * 8);
        int clusterSize = 1 << _clusterBits;
        byte[] l1 = ReadWithin(l1Offset, (int)l1Size * 8);
        byte[] l2 = new byte[clusterSize];
        EntryFormat format = HeaderModule.entryFormat(_header);
        for (int i = 0; i < l1.Length / 8; i++)
        {
            ulong table = BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan(i * 8)) & L1Entry.OffsetMask;
            if (table == 0)
            {
                continue;
            }

            Add(table, (ulong)clusterSize);
            if (table + (ulong)clusterSize > (ulong)_fileLength)
            {
                continue;
            }

            _storage.Read((long)table, l2);
            for (int j = 0; j < clusterSize / 8; j++)
            {
                var mapping = L2Entry.classify(format, BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * 8)));
                if (mapping.IsError)
                {
                    continue;
                }

                L2Mapping m = mapping.ResultValue;
                if (m.IsNormal)
                {
                    Add(m.Host, (ulong)clusterSize);
                }
                else if (m.IsZeroAllocated)
                {
                    Add(m.ZeroHost, (ulong)clusterSize);
                }
                else if (m.IsCompressed)
                {
                    Add(m.StreamHost, m.StreamLength);
                }
            }
        }
    }

    /// <summary>The snapshot table's entries; counts the table's own extent.</summary>
    private List<Snapshot> Snapshots()
    {
        ulong at = _header.SnapshotsOffset;
        ulong tableBytes = 0;
        var entries = new List<Snapshot>();
        byte[] fixedPart = new byte[SnapshotModule.FixedBytes];
        for (uint i = 0; i < _header.SnapshotCount; i++)
        {
            ulong entryAt = at + tableBytes;
            if (_storage.Read((long)entryAt, fixedPart) != fixedPart.Length)
            {
                throw new QcowFormatException(_storage.Path, QcowFormatErrorKind.Truncated, QcowStructure.SnapshotTable, (long)entryAt, "the snapshot table runs past the end of the file");
            }

            ulong bytes = SnapshotModule.entryBytes(fixedPart, entryAt).OrThrow(_storage.Path);
            if (tableBytes + bytes > SnapshotModule.MaxTableBytes)
            {
                throw new QcowFormatException(_storage.Path, QcowFormatErrorKind.FieldOutOfRange, QcowStructure.SnapshotTable, (long)entryAt, "the snapshot table is larger than QEMU's 64 MiB limit");
            }

            byte[] entry = new byte[bytes];
            _storage.Read((long)entryAt, entry);
            entries.Add(SnapshotModule.decode(_clusterBits, entry, entryAt).OrThrow(_storage.Path));
            tableBytes += bytes;
        }

        if (tableBytes > 0)
        {
            Add(at, tableBytes);
        }

        return entries;
    }

    /// <summary>Reads a table, as much of it as the file holds (the rest reads as zeros).</summary>
    private byte[] ReadWithin(ulong offset, int length)
    {
        long available = Math.Max(0, Math.Min(length, _fileLength - (long)offset));
        byte[] bytes = new byte[available & ~7L];
        _storage.Read((long)offset, bytes);
        return bytes;
    }
}
