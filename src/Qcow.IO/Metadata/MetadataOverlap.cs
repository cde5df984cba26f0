// Where the live metadata of a qcow2 image lies, so that no write lands on it: QEMU's overlap
// check at its default "cached" level (header, active L1 and L2 tables, refcount table and
// blocks, snapshot table, snapshot L1 tables), kept from what is in memory, never read anew.
using System;
using System.Collections.Generic;

namespace Qcow.IO;

/// <summary>The kinds of metadata a write may overlap, named as QEMU names them.</summary>
internal enum MetadataRole
{
    None,
    Header,
    ActiveL1,
    ActiveL2,
    RefcountTable,
    RefcountBlock,
    SnapshotTable,
    InactiveL1,
}

internal sealed class MetadataOverlap
{
    private readonly int _clusterBits;
    private readonly List<(ulong Offset, ulong Length, MetadataRole Role)> _extents = new();
    private readonly HashSet<ulong> _l2Tables = new();
    private readonly HashSet<ulong> _refcountBlocks = new();

    public MetadataOverlap(int clusterBits)
    {
        _clusterBits = clusterBits;
        _extents.Add((0, 1UL << clusterBits, MetadataRole.Header));
    }

    /// <summary>QEMU's words for each role, for the corruption message.</summary>
    public static string Describe(MetadataRole role) => role switch
    {
        MetadataRole.Header => "qcow2_header",
        MetadataRole.ActiveL1 => "active L1 table",
        MetadataRole.ActiveL2 => "active L2 table",
        MetadataRole.RefcountTable => "refcount table",
        MetadataRole.RefcountBlock => "refcount block",
        MetadataRole.SnapshotTable => "snapshot table",
        MetadataRole.InactiveL1 => "inactive L1 table",
        _ => "nothing",
    };

    /// <summary>A table at a fixed place: L1 tables, the refcount table, the snapshot table.</summary>
    public void SetExtent(MetadataRole role, ulong offset, ulong length)
    {
        if (role is MetadataRole.ActiveL1 or MetadataRole.RefcountTable)
        {
            _extents.RemoveAll(e => e.Role == role);
        }

        if (length > 0)
        {
            _extents.Add((offset, length, role));
        }
    }

    public void ReplaceL2Table(ulong before, ulong after) => Replace(_l2Tables, before, after);

    public void ReplaceRefcountBlock(ulong before, ulong after) => Replace(_refcountBlocks, before, after);

    /// <summary>The first kind of metadata, other than <paramref name="own"/>, that the byte range touches; None when it is free of metadata.</summary>
    public MetadataRole Find(ulong offset, ulong length, MetadataRole own)
    {
        if (length == 0)
        {
            return MetadataRole.None;
        }

        ulong end = offset + length;
        foreach ((ulong start, ulong size, MetadataRole role) in _extents)
        {
            if (role != own && offset < start + size && start < end)
            {
                return role;
            }
        }

        ulong first = offset >> _clusterBits;
        ulong last = (end - 1) >> _clusterBits;
        for (ulong c = first; c <= last; c++)
        {
            if (own != MetadataRole.ActiveL2 && _l2Tables.Contains(c))
            {
                return MetadataRole.ActiveL2;
            }

            if (own != MetadataRole.RefcountBlock && _refcountBlocks.Contains(c))
            {
                return MetadataRole.RefcountBlock;
            }
        }

        return MetadataRole.None;
    }

    private void Replace(HashSet<ulong> clusters, ulong before, ulong after)
    {
        if (before != 0)
        {
            clusters.Remove(before >> _clusterBits);
        }

        if (after != 0)
        {
            clusters.Add(after >> _clusterBits);
        }
    }
}
