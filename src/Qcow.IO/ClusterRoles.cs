// What each host cluster of a qcow2 image is for: found by walking every structure the header
// reaches (the same walk check makes), then, for clusters nothing references, by their refcount.
using System;
using System.Buffers.Binary;
using Qcow.Format;

namespace Qcow.IO;

/// <summary>The role of a host cluster; a cluster with several keeps the first found.</summary>
internal sealed class ClusterRoles
{
    private readonly IStorage _storage;
    private readonly Header _header;
    private readonly int _bits;
    private readonly EntryFormat _format;
    private readonly int _entryBytes;

    private ClusterRoles(IStorage storage, Header header)
    {
        _storage = storage;
        _header = header;
        _bits = header.ClusterBits;
        _format = HeaderModule.entryFormat(header);
        _entryBytes = HeaderModule.geometry(header).L2EntryBytes;
        Roles = new QcowClusterRole[(storage.Length + (1L << _bits) - 1) >> _bits];
    }

    /// <summary>One role per cluster of the file.</summary>
    public QcowClusterRole[] Roles { get; }

    public int ClusterBits => _bits;

    /// <summary>Some L2 entry, active or a snapshot's, is a zero cluster (version 3 only).</summary>
    public bool HasZeroClusters { get; private set; }

    public static ClusterRoles Of(IStorage storage, Header header)
    {
        var map = new ClusterRoles(storage, header);
        long cs = 1L << map._bits;
        map.Mark(0, cs, QcowClusterRole.Header);
        map.MarkTree(header.L1TableOffset, header.L1Size, QcowClusterRole.L1Table, QcowClusterRole.L2Table);
        map.Mark((long)header.RefcountTableOffset, (long)header.RefcountTableClusters * cs, QcowClusterRole.RefcountTable);
        byte[] table = map.Read((long)header.RefcountTableOffset, (int)(header.RefcountTableClusters * cs));
        for (int i = 0; i < table.Length / 8; i++)
        {
            map.Mark((long)(BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8)) & ~Refcount.TableReservedMask), cs, QcowClusterRole.RefcountBlock);
        }

        SnapshotTable snapshots = SnapshotTable.Read(storage, header);
        map.Mark((long)header.SnapshotsOffset, (long)snapshots.Bytes, QcowClusterRole.SnapshotTable);
        foreach (Snapshot snapshot in snapshots.Entries)
        {
            map.MarkTree(snapshot.L1TableOffset, snapshot.L1Size, QcowClusterRole.SnapshotL1Table, QcowClusterRole.SnapshotL2Table);
        }

        var stored = new StoredRefcounts(storage, header);
        for (long c = 0; c < map.Roles.Length; c++)
        {
            if (map.Roles[c] == QcowClusterRole.Free && stored.Get((ulong)c) is > 0)
            {
                map.Roles[c] = QcowClusterRole.Leaked;
            }
        }

        return map;
    }

    private void MarkTree(ulong l1Offset, uint l1Size, QcowClusterRole l1Role, QcowClusterRole l2Role)
    {
        long cs = 1L << _bits;
        Mark((long)l1Offset, (long)l1Size * 8, l1Role);
        byte[] l1 = Read((long)l1Offset, (int)l1Size * 8);
        byte[] l2 = new byte[cs];
        for (int i = 0; i < l1.Length / 8; i++)
        {
            long table = (long)(BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan(i * 8)) & L1Entry.OffsetMask);
            if (table == 0)
            {
                continue;
            }

            Mark(table, cs, l2Role);
            l2.AsSpan().Clear();
            _storage.Read(table, l2.AsSpan(0, (int)Math.Max(0, Math.Min(cs, _storage.Length - table))));
            for (int j = 0; j < l2.Length / _entryBytes; j++)
            {
                ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * _entryBytes));
                ClusterType type = L2Entry.clusterType(_format, entry);
                HasZeroClusters |= type is ClusterType.ZeroPlain or ClusterType.ZeroAllocated;
                switch (type)
                {
                    case ClusterType.Normal or ClusterType.ZeroAllocated when !_format.HasExternalData:
                        Mark((long)(entry & L2Entry.OffsetMask), cs, QcowClusterRole.Data);
                        break;
                    case ClusterType.Compressed:
                        var (host, length) = L2Entry.compressedStream(_bits, entry);
                        Mark((long)host, length, QcowClusterRole.CompressedData);
                        break;
                }
            }
        }
    }

    /// <summary>Gives a role to the clusters a byte range touches that have none yet.</summary>
    private void Mark(long offset, long length, QcowClusterRole role)
    {
        if (length <= 0 || offset < 0)
        {
            return;
        }

        long last = Math.Min((offset + length - 1) >> _bits, Roles.Length - 1);
        for (long c = offset >> _bits; c <= last; c++)
        {
            if (Roles[c] == QcowClusterRole.Free)
            {
                Roles[c] = role;
            }
        }
    }

    /// <summary>What the file holds of a table; the rest reads as zeros.</summary>
    private byte[] Read(long offset, int length)
    {
        byte[] bytes = new byte[Math.Max(0, Math.Min(length, _storage.Length - offset)) & ~7L];
        _storage.Read(offset, bytes);
        return bytes;
    }
}
