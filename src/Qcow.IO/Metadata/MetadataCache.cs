// A bounded LRU cache of metadata tables (L2 tables or refcount blocks), keyed by host offset,
// holding their raw on-disk bytes and a dirty flag. It does no I/O of its own: dirty victims
// go to the owner's write-back, which keeps the flush order.
using System;
using System.Collections.Generic;

namespace Qcow.IO;

internal sealed class MetadataCache
{
    private readonly Dictionary<long, Node> _nodes;
    private readonly int _capacity;
    private readonly int _tableBytes;
    private readonly Action<long, byte[]> _writeBack;
    private Node? _newest;
    private Node? _oldest;
    private byte[]? _spare;

    /// <param name="capacity">Tables held at most (at least 4, so a plan's working set fits).</param>
    /// <param name="tableBytes">Bytes of one table.</param>
    /// <param name="writeBack">Writes a dirty table that is about to be evicted.</param>
    public MetadataCache(int capacity, int tableBytes, Action<long, byte[]> writeBack)
    {
        _capacity = Math.Max(4, capacity);
        _tableBytes = tableBytes;
        _writeBack = writeBack;
        _nodes = new Dictionary<long, Node>(Math.Min(_capacity, 4096));
    }

    public bool HasDirty { get; private set; }

    /// <summary>The table at <paramref name="offset"/>, made the most recently used; null if absent.</summary>
    public byte[]? TryGet(long offset)
    {
        if (!_nodes.TryGetValue(offset, out Node? node))
        {
            return null;
        }

        MoveToNewest(node);
        return node.Data;
    }

    /// <summary>
    /// Makes room for a table at <paramref name="offset"/> and returns its buffer for the caller to
    /// fill; an existing entry for that offset is replaced.
    /// </summary>
    public byte[] Insert(long offset, bool dirty)
    {
        if (_nodes.TryGetValue(offset, out Node? existing))
        {
            existing.Dirty |= dirty;
            HasDirty |= dirty;
            MoveToNewest(existing);
            return existing.Data;
        }

        if (_nodes.Count >= _capacity)
        {
            EvictOldest();
        }

        byte[] data = _spare ?? new byte[_tableBytes];
        _spare = null;
        var node = new Node(offset, data) { Dirty = dirty };
        HasDirty |= dirty;
        _nodes.Add(offset, node);
        Link(node);
        return data;
    }

    public void MarkDirty(long offset)
    {
        Node node = _nodes[offset];
        node.Dirty = true;
        HasDirty = true;
    }

    /// <summary>Forgets a table without writing it: its cluster no longer holds it.</summary>
    public void Forget(long offset)
    {
        if (_nodes.Remove(offset, out Node? node))
        {
            Unlink(node);
        }
    }

    /// <summary>Writes every dirty table, lowest offset first, and marks them clean.</summary>
    public void WriteDirty(Action<long, byte[]> write)
    {
        if (!HasDirty)
        {
            return;
        }

        var dirty = new List<Node>();
        foreach (Node node in _nodes.Values)
        {
            if (node.Dirty)
            {
                dirty.Add(node);
            }
        }

        dirty.Sort(static (a, b) => a.Offset.CompareTo(b.Offset));
        foreach (Node node in dirty)
        {
            write(node.Offset, node.Data);
            node.Dirty = false;
        }

        HasDirty = false;
    }

    private void EvictOldest()
    {
        Node victim = _oldest!;
        if (victim.Dirty)
        {
            _writeBack(victim.Offset, victim.Data);
            victim.Dirty = false;
        }

        _nodes.Remove(victim.Offset);
        Unlink(victim);
        _spare = victim.Data;
    }

    private void MoveToNewest(Node node)
    {
        if (node != _newest)
        {
            Unlink(node);
            Link(node);
        }
    }

    private void Link(Node node)
    {
        node.Older = _newest;
        node.Newer = null;
        if (_newest != null)
        {
            _newest.Newer = node;
        }

        _newest = node;
        _oldest ??= node;
    }

    private void Unlink(Node node)
    {
        if (node.Newer != null)
        {
            node.Newer.Older = node.Older;
        }
        else
        {
            _newest = node.Older;
        }

        if (node.Older != null)
        {
            node.Older.Newer = node.Newer;
        }
        else
        {
            _oldest = node.Newer;
        }

        node.Newer = null;
        node.Older = null;
    }

    private sealed class Node
    {
        public Node(long offset, byte[] data)
        {
            Offset = offset;
            Data = data;
        }

        public long Offset { get; }

        public byte[] Data { get; }

        public bool Dirty { get; set; }

        public Node? Newer { get; set; }

        public Node? Older { get; set; }
    }
}
