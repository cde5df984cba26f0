// What each host cluster of a qcow2 image is for: a fold over the table walk (the walk check
// makes), then, for clusters nothing references, their refcount says whether they are leaked.
using System;
using Qcow.Format;

namespace Qcow.IO;

/// <summary>The role of a host cluster; a cluster with several keeps the first the walk finds.</summary>
internal sealed class ClusterRoles : IWalkVisitor
{
    private readonly int _bits;
    private readonly bool _externalData;

    private ClusterRoles(IStorage storage, Header header)
    {
        _bits = header.ClusterBits;
        _externalData = HeaderModule.entryFormat(header).HasExternalData;
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
        ImageWalk.Walk(storage, header, WalkScope.Everything, map);
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

    /// <summary>One item of the walk: the clusters it names get its role, unless they have one.</summary>
    public void Visit(in Walked item)
    {
        long cs = 1L << _bits;
        bool active = item.Tree == 0;
        switch (item.Item)
        {
            case WalkItem.HeaderCluster:
                Mark(0, cs, QcowClusterRole.Header);
                break;
            case WalkItem.L1Table:
                Mark((long)item.Offset, (long)item.Length, active ? QcowClusterRole.L1Table : QcowClusterRole.SnapshotL1Table);
                break;
            case WalkItem.L1Entry:
                Mark((long)(item.Entry & L1Entry.OffsetMask), cs, active ? QcowClusterRole.L2Table : QcowClusterRole.SnapshotL2Table);
                break;
            case WalkItem.L2Entry:
                MarkL2Entry(item);
                break;
            case WalkItem.SnapshotTable:
                Mark((long)item.Offset, (long)item.Length, QcowClusterRole.SnapshotTable);
                break;
            case WalkItem.BitmapDirectory or WalkItem.BitmapTable:
                Mark((long)item.Offset, (long)item.Length, QcowClusterRole.Bitmap);
                break;
            case WalkItem.BitmapEntry when (item.Entry & L2Entry.OffsetMask) != 0:
                Mark((long)(item.Entry & L2Entry.OffsetMask), cs, QcowClusterRole.Bitmap);
                break;
            case WalkItem.RefcountTable:
                Mark((long)item.Offset, (long)item.Length, QcowClusterRole.RefcountTable);
                break;
            case WalkItem.RefcountTableEntry:
                Mark((long)(item.Entry & ~Refcount.TableReservedMask), cs, QcowClusterRole.RefcountBlock);
                break;
        }
    }

    private void MarkL2Entry(in Walked item)
    {
        HasZeroClusters |= item.Type is ClusterType.ZeroPlain or ClusterType.ZeroAllocated;
        switch (item.Type)
        {
            case ClusterType.Normal or ClusterType.ZeroAllocated when !_externalData:
                Mark((long)(item.Entry & L2Entry.OffsetMask), 1L << _bits, QcowClusterRole.Data);
                break;
            case ClusterType.Compressed:
                var (host, length) = L2Entry.compressedStream(_bits, item.Entry);
                Mark((long)host, length, QcowClusterRole.CompressedData);
                break;
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
}
