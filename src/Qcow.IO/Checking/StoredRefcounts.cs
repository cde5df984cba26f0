// The refcounts an image stores, read block by block as they are needed, as QEMU's
// qcow2_get_refcount reads them: a cluster past the table, or in a block past the end of the
// file, has refcount 0; a block at a misaligned offset cannot be read.
using System;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class StoredRefcounts
{
    private readonly IStorage _storage;
    private readonly RefcountGeometry _geometry;
    private readonly ulong[] _table;
    private readonly Dictionary<ulong, byte[]> _blocks = new();
    private readonly HashSet<ulong> _changed = new();

    public StoredRefcounts(IStorage storage, Header header)
    {
        _storage = storage;
        _geometry = HeaderModule.refcountGeometry(header);
        _table = ImageWalk.RefcountTable(storage, header);
        for (int i = 0; i < _table.Length; i++)
        {
            _table[i] &= ~Refcount.TableReservedMask;
        }
    }

    /// <summary>The stored refcount of a cluster; null when its refcount block cannot be read.</summary>
    public ulong? Get(ulong cluster) => Block(cluster) switch
    {
        null => null,
        { Length: 0 } => 0,
        byte[] block => Refcount.get(_geometry.RefcountOrder, block, EntryInBlock(cluster)),
    };

    /// <summary>QEMU's words for a cluster whose refcount block cannot be read, or null when it can.</summary>
    public string? WhyUnreadable(ulong cluster)
    {
        ulong index = cluster >> Refcount.blockBits(_geometry);
        return IsMisaligned(index) ? $"Refblock offset 0x{_table[index]:x} unaligned (reftable index: {(index == 0 ? "0" : $"0x{index:x}")})" : null;
    }

    /// <summary>Sets a cluster's refcount in a block that exists and can be read; written by <see cref="WriteBack"/>.</summary>
    public void Set(ulong cluster, ulong value)
    {
        ulong index = cluster >> Refcount.blockBits(_geometry);
        if (Block(cluster) is { } block && block.Length > 0 && _table[index] < (ulong)_storage.Length)
        {
            Refcount.set(_geometry.RefcountOrder, block, EntryInBlock(cluster), value);
            _changed.Add(index);
        }
    }

    /// <summary>Writes every block <see cref="Set"/> changed, and makes them durable.</summary>
    public void WriteBack()
    {
        foreach (ulong index in _changed)
        {
            _storage.Write((long)_table[index], _blocks[index]);
        }

        _changed.Clear();
        _storage.Flush();
    }

    /// <summary>The block holding a cluster's refcount: empty when there is none (refcount 0), null when unreadable.</summary>
    private byte[]? Block(ulong cluster)
    {
        ulong index = cluster >> Refcount.blockBits(_geometry);
        if (index >= (ulong)_table.Length || _table[index] == 0)
        {
            return [];
        }

        if (IsMisaligned(index))
        {
            return null;
        }

        if (!_blocks.TryGetValue(index, out byte[]? block))
        {
            block = new byte[1 << _geometry.ClusterBits];
            if (_table[index] < (ulong)_storage.Length)
            {
                _storage.Read((long)_table[index], block);
            }

            _blocks[index] = block;
        }

        return block;
    }

    private bool IsMisaligned(ulong index) =>
        index < (ulong)_table.Length && (_table[index] & (ulong)((1 << _geometry.ClusterBits) - 1)) != 0;

    private int EntryInBlock(ulong cluster) => (int)(cluster & (Refcount.entriesPerBlock(_geometry) - 1));
}
