// The image's metadata in memory: L1 table, L2 and refcount-block caches, refcount table, the
// releases waiting for a durable mapping, and the flush that writes them in QEMU's order.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class ImageMetadata : IRefcountView
{
    private const int ChunkEntries = 64;
    private const ulong MaxCacheBytes = 32UL << 20;

    private readonly IStorage _storage;
    private readonly ImageLayout _layout;
    private readonly ILogger _logger;
    private readonly MetadataCache _l2Cache;
    private readonly MetadataCache? _blockCache;
    private readonly HashSet<int> _dirtyL1Chunks = new();
    private readonly HashSet<int> _dirtyTableChunks = new();
    private readonly List<(ulong Cluster, bool Discarded)> _pendingReleases = new();

    /// <summary>A cluster a discard frees has its space given back to the file system (QEMU's discard=unmap).</summary>
    private readonly bool _passDiscards;
    private readonly HashSet<ulong> _tablesPastEnd = new();
    private readonly Dictionary<ulong, long> _freeEntries = new();
    private readonly MetadataOverlap? _overlap;
    private ulong[] _l1;
    private ulong[] _refcountTable;
    private ulong _refcountTableOffset;
    private uint _refcountTableClusters;

    // snapshots: the snapshot table and where it starts (qcow2 only), kept from being overwritten.
    // lazyRefcounts: the image has QEMU's lazy refcounts feature and is open for writing.
    public ImageMetadata(IStorage storage, ImageLayout layout, ILogger logger, long cacheBytes, (SnapshotTable Table, ulong Offset)? snapshots, bool passDiscards = false, bool lazyRefcounts = false)
    {
        _passDiscards = passDiscards;
        _lazyRefcounts = lazyRefcounts;
        _storage = storage;
        _layout = layout;
        _logger = logger;
        _l1 = ReadTable(layout.L1Offset, layout.L1Size, Structure.L1Table);
        int l2Tables = (int)Math.Max(4, Math.Min((ulong)cacheBytes, CoverBytes(layout)) / (ulong)layout.L2TableBytes);
        _l2Cache = new MetadataCache(l2Tables, layout.L2TableBytes, WriteBackL2Table);
        _refcountTable = Array.Empty<ulong>();
        if (layout.HasRefcounts)
        {
            _refcountTableOffset = layout.RefcountTableOffset;
            _refcountTableClusters = layout.RefcountTableClusters;
            int entries = (int)Qcow.Format.Refcount.tableEntriesIn(layout.Refcounts, layout.RefcountTableClusters);
            _refcountTable = ReadTable(layout.RefcountTableOffset, entries, Structure.RefcountTable);
            _blockCache = new MetadataCache(Math.Max(4, l2Tables / 4), layout.ClusterSize, WriteRefcountBlock);
            _overlap = ProtectedMetadata(snapshots);
        }
    }

    /// <summary>True once a write was refused for overlapping metadata: the image is marked corrupt and takes no more writes.</summary>
    public bool IsCorrupt { get; private set; }

    /// <summary>
    /// Lazy refcounts, as QEMU keeps them: the first flush that writes tables first makes the
    /// dirty bit durable; from then on flushes leave refcount blocks in memory (a crash leaves a
    /// dirty image, whose refcounts the next read-write open rebuilds), and only closing the
    /// image writes them and clears the bit.
    /// </summary>
    private readonly bool _lazyRefcounts;

    /// <summary>The dirty bit is set on disk: refcount blocks wait for <see cref="Close"/>.</summary>
    private bool _markedDirty;

    private MetadataOverlap ProtectedMetadata((SnapshotTable Table, ulong Offset)? snapshots)
    {
        var overlap = new MetadataOverlap(_layout.Geometry.ClusterBits);
        overlap.SetExtent(MetadataRole.ActiveL1, _layout.L1Offset, (ulong)_layout.L1Size * 8);
        overlap.SetExtent(MetadataRole.RefcountTable, _refcountTableOffset, (ulong)_refcountTableClusters << _layout.Geometry.ClusterBits);
        foreach (ulong entry in _l1)
        {
            overlap.ReplaceL2Table(0, entry & Qcow.Format.L1Entry.OffsetMask);
        }

        for (ulong i = 0; i < (ulong)_refcountTable.Length; i++)
        {
            overlap.ReplaceRefcountBlock(0, BlockOffset(i));
        }

        if (snapshots is { } s)
        {
            overlap.SetExtent(MetadataRole.SnapshotTable, s.Offset, s.Table.Bytes);
            foreach (Snapshot snapshot in s.Table.Entries)
            {
                overlap.SetExtent(MetadataRole.InactiveL1, snapshot.L1TableOffset, (ulong)snapshot.L1Size * 8);
            }
        }

        return overlap;
    }

    /// <summary>Writes guest data (or a copied cluster) to a host offset that must hold no metadata.</summary>
    public void WriteData(ulong host, ReadOnlySpan<byte> bytes)
    {
        GuardData(host, (ulong)bytes.Length);
        _storage.Announce(QcowDriverEvent.WriteAio);
        _storage.Write((long)host, bytes);
    }

    /// <summary>Refuses guest data bound for live metadata, as <see cref="WriteData"/> does, for a caller that writes it itself.</summary>
    public void GuardData(ulong host, ulong length) => Guard(host, length, MetadataRole.None);

    /// <summary>
    /// Refuses a write that would land on live metadata of another kind: the image is marked
    /// corrupt (as QEMU marks it) and nothing is written.
    /// </summary>
    private void Guard(ulong offset, ulong length, MetadataRole own)
    {
        MetadataRole hit = _overlap?.Find(offset, length, own) ?? MetadataRole.None;
        if (hit == MetadataRole.None)
        {
            return;
        }

        MarkCorrupt();
        _logger.LogError("{Image}: a write at 0x{Offset:x} would overlap the {Role}; image marked as corrupt", _layout.Path, offset, MetadataOverlap.Describe(hit));
        throw Fail(FormatError.NewOverlapsMetadata(StructureOf(hit), offset, MetadataOverlap.Describe(hit)));
    }

    /// <summary>QEMU's fatal corruption event: no more writes this open, and (version 3, writable) the corrupt bit on disk.</summary>
    private void MarkCorrupt()
    {
        IsCorrupt = true;
        if (_layout.Version >= 3 && _storage.CanWrite)
        {
            // Version 2 has no corrupt bit (byte 72 starts its extensions): the image is then
            // corrupt for this open only, as QEMU keeps it.
            Span<byte> field = stackalloc byte[8];
            _storage.Read(HeaderEncode.IncompatibleFieldOffset, field);
            ulong incompatible = BinaryPrimitives.ReadUInt64BigEndian(field) | HeaderModule.CorruptBit;
            _storage.Write(HeaderEncode.IncompatibleFieldOffset, HeaderEncode.featureField(incompatible));
            _storage.Flush();
        }
    }

    private static Structure StructureOf(MetadataRole role) => role switch
    {
        MetadataRole.ActiveL1 or MetadataRole.InactiveL1 => Structure.L1Table,
        MetadataRole.ActiveL2 => Structure.L2Table,
        MetadataRole.RefcountTable => Structure.RefcountTable,
        MetadataRole.RefcountBlock => Structure.RefcountBlock,
        MetadataRole.SnapshotTable => Structure.SnapshotTable,
        _ => Structure.Header,
    };

    /// <summary>Where the next allocation starts looking: below it every cluster is in use.</summary>
    public ulong FirstFreeCluster { get; set; }

    /// <summary>
    /// Where the file ends, clusters this image allocated since it opened included: qcow v1
    /// allocates there; qcow2 allocates, and writes, no further than MaxPastEndBytes past it.
    /// </summary>
    public ulong FileEnd { get; set; }

    public ulong RefcountTableOffset => _refcountTableOffset;

    public uint RefcountTableClusters => _refcountTableClusters;

    /// <summary>QEMU's default: cache enough L2 tables to map the whole image, up to 32 MiB.</summary>
    private static ulong CoverBytes(ImageLayout layout)
    {
        ulong tables = GeometryModule.l1EntriesFor(layout.Geometry, layout.VirtualSize);
        return Math.Min(MaxCacheBytes, Math.Max(1, tables) * (ulong)layout.L2TableBytes);
    }

    // ---- L1 and L2 ----

    public ulong L1Entry(int index) => index < _l1.Length ? _l1[index] : 0;

    public void SetL1Entry(int index, ulong entry)
    {
        if (index >= _l1.Length)
        {
            Array.Resize(ref _l1, Math.Min(_layout.L1Size, Math.Max(index + 1, _l1.Length * 2)));
        }

        _overlap?.ReplaceL2Table(_l1[index] & Qcow.Format.L1Entry.OffsetMask, entry & Qcow.Format.L1Entry.OffsetMask);
        _l1[index] = entry;
        _dirtyL1Chunks.Add(index / ChunkEntries);
    }

    /// <summary>The offset of the L2 table an L1 entry names (0 = none), checked.</summary>
    public ulong L2TableOffset(int l1Index)
    {
        ulong entry = L1Entry(l1Index);
        ulong table = _layout.Version == 1 ? entry : entry & Qcow.Format.L1Entry.OffsetMask;
        if (table == 0)
        {
            return 0;
        }

        ulong where = _layout.L1Offset + ((ulong)l1Index * 8);
        if (_layout.Version >= 2 && !GeometryModule.isClusterAligned(_layout.Geometry, table))
        {
            throw Fail(FormatError.NewMisaligned(Structure.L1Table, where, table));
        }

        return table;
    }

    public ulong L2Entry(ulong table, int index, int l1Index) =>
        BinaryPrimitives.ReadUInt64BigEndian(L2Table(table, l1Index).AsSpan(index * _layout.Geometry.L2EntryBytes));

    /// <summary>The subcluster bitmap of an extended L2 entry (its second word).</summary>
    public ulong L2Bitmap(ulong table, int index, int l1Index) =>
        BinaryPrimitives.ReadUInt64BigEndian(L2Table(table, l1Index).AsSpan((index * _layout.Geometry.L2EntryBytes) + 8));

    /// <summary>Refuses to change an L2 table that lies past the end of the file (it reads as zeros).</summary>
    public void ThrowIfPastEnd(ulong table)
    {
        if (_tablesPastEnd.Contains(table))
        {
            throw Fail(FormatError.NewTablePastEnd(Structure.L2Table, table));
        }
    }

    public void SetL2Entry(ulong table, int index, ulong entry)
    {
        ThrowIfPastEnd(table);

        byte[] data = _l2Cache.TryGet((long)table) ?? LoadTable(_l2Cache, table, _layout.L2TableBytes, Structure.L2Table, table);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(index * _layout.Geometry.L2EntryBytes), entry);
        _l2Cache.MarkDirty((long)table);
    }

    /// <summary>
    /// A new L2 table is written at once, as QEMU writes it, and enters the cache clean: its
    /// space on the file is taken now, so a full disk fails the request that needed the table,
    /// not a later flush that every earlier write depends on.
    /// </summary>
    public void CreateL2Table(ulong offset, ulong copyOf)
    {
        Guard(offset, (ulong)_layout.L2TableBytes, MetadataRole.None);
        byte[] content = copyOf == 0 ? new byte[_layout.L2TableBytes] : (byte[])L2Table(copyOf, -1).Clone();
        _storage.Announce(QcowDriverEvent.L2AllocWrite);
        _storage.Write((long)offset, content);
        content.CopyTo(_l2Cache.Insert((long)offset, dirty: false), 0);

        // As QEMU's l2_allocate: under lazy refcounts the refcounts so far (the new table's among
        // them) are written before anything can name the table; only data clusters' wait.
        if (_lazyRefcounts)
        {
            _blockCache?.WriteDirty(WriteRefcountBlock);
            _storage.Flush();
        }
    }

    private byte[] L2Table(ulong table, int l1Index)
    {
        byte[]? data = _l2Cache.TryGet((long)table);
        if (data != null)
        {
            return data;
        }

        ulong where = l1Index < 0 ? table : _layout.L1Offset + ((ulong)l1Index * 8);
        return LoadTable(_l2Cache, table, _layout.L2TableBytes, Structure.L1Table, where);
    }

    // ---- Refcounts (the planner's view) ----

    public ulong TableEntries => Qcow.Format.Refcount.tableEntriesIn(_layout.Refcounts, _refcountTableClusters);

    public ulong BlockOffset(ulong index) => index < (ulong)_refcountTable.Length ? _refcountTable[index] & ~Qcow.Format.Refcount.TableReservedMask : 0;

    public RefcountLookup Refcount(ulong cluster)
    {
        ulong index = cluster >> Qcow.Format.Refcount.blockBits(_layout.Refcounts);
        ulong block = BlockOffset(index);
        if (block == 0)
        {
            return new RefcountLookup(true, 0);
        }

        byte[]? data = _blockCache!.TryGet((long)block);
        return data is null
            ? new RefcountLookup(false, 0)
            : new RefcountLookup(true, Qcow.Format.Refcount.get(_layout.Refcounts.RefcountOrder, data, EntryInBlock(cluster)));
    }

    public void LoadRefcountBlock(ulong index) => RefcountBlock(index);

    /// <summary>
    /// Whether every cluster a block describes is known to be in use. The count of free entries
    /// is kept for each block ever loaded (this image is its only writer), so a search for free
    /// clusters can pass full blocks without loading them again; otherwise a search that crosses
    /// more blocks than the cache holds would never finish.
    /// </summary>
    public bool BlockIsFull(ulong index) => _freeEntries.TryGetValue(index, out long free) && free == 0;

    public void SetRefcount(ulong cluster, ulong value)
    {
        ulong index = cluster >> Qcow.Format.Refcount.blockBits(_layout.Refcounts);
        byte[] block = RefcountBlock(index);
        int order = _layout.Refcounts.RefcountOrder;
        CountChange(index, Qcow.Format.Refcount.get(order, block, EntryInBlock(cluster)), value);
        Qcow.Format.Refcount.set(order, block, EntryInBlock(cluster), value);
        _blockCache!.MarkDirty((long)BlockOffset(index));
    }

    private void CountChange(ulong index, ulong before, ulong after)
    {
        if ((before == 0) != (after == 0) && _freeEntries.TryGetValue(index, out long free))
        {
            _freeEntries[index] = free + (after == 0 ? 1 : -1);
        }
    }

    private void CountFree(ulong index, byte[] block)
    {
        int order = _layout.Refcounts.RefcountOrder;
        long free = 0;
        for (int i = 0; i < (int)Qcow.Format.Refcount.entriesPerBlock(_layout.Refcounts); i++)
        {
            if (Qcow.Format.Refcount.get(order, block, i) == 0)
            {
                free++;
            }
        }

        _freeEntries[index] = free;
    }

    /// <summary>A new refcount block is written at once, like a new L2 table (see <see cref="CreateL2Table"/>).</summary>
    public void CreateRefcountBlock(NewRefcountBlock block)
    {
        Guard(block.Offset, (ulong)_layout.ClusterSize, MetadataRole.None);
        byte[] content = new byte[_layout.ClusterSize];
        for (ulong c = block.FirstInUse; c < block.FirstInUse + block.InUseCount; c++)
        {
            Qcow.Format.Refcount.set(_layout.Refcounts.RefcountOrder, content, EntryInBlock(c), 1);
        }

        _storage.Write((long)block.Offset, content);
        content.CopyTo(_blockCache!.Insert((long)block.Offset, dirty: false), 0);
        _freeEntries[block.TableIndex] = (long)(Qcow.Format.Refcount.entriesPerBlock(_layout.Refcounts) - block.InUseCount);
    }

    public void LinkRefcountBlock(ulong index, ulong offset)
    {
        if (index >= (ulong)_refcountTable.Length)
        {
            Array.Resize(ref _refcountTable, (int)Math.Min(TableEntries, Math.Max(index + 1, (ulong)_refcountTable.Length * 2)));
        }

        _overlap?.ReplaceRefcountBlock(_refcountTable[index] & ~Qcow.Format.Refcount.TableReservedMask, offset);
        _refcountTable[index] = offset;
        _dirtyTableChunks.Add((int)(index / ChunkEntries));
    }

    /// <summary>
    /// Writes a new, larger refcount table: first every refcount block it names (new ones
    /// included) is made durable, then the table itself.
    /// </summary>
    public void CreateRefcountTable(ulong offset, uint clusters, ulong[] entries)
    {
        Guard(offset, (ulong)clusters << _layout.Geometry.ClusterBits, MetadataRole.None);
        _blockCache!.WriteDirty(WriteRefcountBlock);
        _storage.Flush();
        byte[] bytes = new byte[(long)clusters << _layout.Geometry.ClusterBits];
        for (int i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), entries[i]);
        }

        _storage.Write((long)offset, bytes);
        _storage.Flush();
        for (int i = 0; i < entries.Length; i++)
        {
            _overlap!.ReplaceRefcountBlock(BlockOffset((ulong)i), entries[i] & ~Qcow.Format.Refcount.TableReservedMask);
        }

        _refcountTable = entries;
        _logger.LogDebug("{Image}: new refcount table at 0x{Offset:x}, {Clusters} clusters", _layout.Path, offset, clusters);
    }

    /// <summary>Points the header at the new table with one write, as QEMU does, and syncs.</summary>
    public void SwitchRefcountTable(ulong offset, uint clusters)
    {
        _storage.Write(HeaderEncode.RefcountTableFieldsOffset, HeaderEncode.refcountTableFields(offset, clusters));
        _storage.Flush();
        _refcountTableOffset = offset;
        _refcountTableClusters = clusters;
        _overlap!.SetExtent(MetadataRole.RefcountTable, offset, (ulong)clusters << _layout.Geometry.ClusterBits);
        _dirtyTableChunks.Clear();
    }

    /// <summary>Queues a release; it is applied once the mapping that dropped it is durable.</summary>
    public void Release(ulong cluster, bool discarded) => _pendingReleases.Add((cluster, discarded));

    /// <summary>How many releases wait for the next flush.</summary>
    public int PendingReleases => _pendingReleases.Count;

    // ---- Flush, in QEMU's order ----

    /// <summary>
    /// Makes everything durable, level by level in the core's order (FlushLevel), with a barrier
    /// after each: data and refcount blocks; then the refcount table; then L2 tables; then the
    /// L1 table; then the releases of clusters that no durable mapping references any more.
    /// </summary>
    public void Flush() => FlushThrough(FlushLevel.Releases);

    /// <summary>Flushes with the refcount blocks written too, lazy or not: what check and repair read from the file is then exact.</summary>
    public void FlushAccurately()
    {
        Flush();
        if (_markedDirty)
        {
            _blockCache?.WriteDirty(WriteRefcountBlock);
            _storage.Flush();
        }
    }

    /// <summary>The last flush of an open: under lazy refcounts, the refcount blocks, then the dirty bit cleared.</summary>
    public void Close()
    {
        FlushAccurately();
        if (_markedDirty)
        {
            WriteDirtyBit(false);
        }
    }

    /// <summary>Makes the levels durable in FlushLevel's order, up to and including <paramref name="last"/>.</summary>
    private void FlushThrough(FlushLevel last)
    {
        if (_lazyRefcounts && !_markedDirty && (_l2Cache.HasDirty || _dirtyL1Chunks.Count > 0))
        {
            WriteDirtyBit(true);
        }

        foreach (FlushLevel level in FlushLevelModule.order)
        {
            Write(level);
            if (level == last)
            {
                return;
            }
        }
    }

    /// <summary>Writes what one level holds that is not on the file yet, then a barrier.</summary>
    private void Write(FlushLevel level)
    {
        switch (level)
        {
            case FlushLevel.DataAndRefcounts:
                // Data and new tables were written at once: the barrier makes them durable too.
                if (!_markedDirty)
                {
                    _blockCache?.WriteDirty(WriteRefcountBlock);
                }

                _storage.Flush();
                break;
            case FlushLevel.RefcountTable when _dirtyTableChunks.Count > 0:
                WriteChunks(_dirtyTableChunks, _refcountTable, _refcountTableOffset, (int)TableEntries, MetadataRole.RefcountTable);
                _storage.Flush();
                break;
            case FlushLevel.L2Tables when _l2Cache.HasDirty:
                _l2Cache.WriteDirty(WriteL2Table);
                _storage.Flush();
                break;
            case FlushLevel.L1Table when _dirtyL1Chunks.Count > 0:
                WriteChunks(_dirtyL1Chunks, _l1, _layout.L1Offset, _layout.L1Size, MetadataRole.ActiveL1);
                _storage.Flush();
                break;
            case FlushLevel.Releases when _pendingReleases.Count > 0:
                ApplyReleases();
                if (!_markedDirty)
                {
                    _blockCache!.WriteDirty(WriteRefcountBlock);
                }

                _storage.Flush();
                break;
        }
    }

    /// <summary>A dirty L2 table leaves the cache: the levels below it must be durable first (under lazy refcounts, the dirty bit).</summary>
    private void WriteBackL2Table(long offset, byte[] data)
    {
        if (_lazyRefcounts && !_markedDirty)
        {
            WriteDirtyBit(true);
        }

        FlushThrough(FlushLevel.RefcountTable);
        WriteL2Table(offset, data);
    }

    /// <summary>Sets or clears the dirty bit on disk, durably, as QEMU's qcow2_mark_dirty and qcow2_mark_clean do.</summary>
    private void WriteDirtyBit(bool dirty)
    {
        _storage.Flush();
        Span<byte> field = stackalloc byte[8];
        _storage.Read(HeaderEncode.IncompatibleFieldOffset, field);
        ulong incompatible = BinaryPrimitives.ReadUInt64BigEndian(field);
        incompatible = dirty ? incompatible | HeaderModule.DirtyBit : incompatible & ~HeaderModule.DirtyBit;
        _storage.Write(HeaderEncode.IncompatibleFieldOffset, HeaderEncode.featureField(incompatible));
        _storage.Flush();
        _markedDirty = dirty;
    }

    private void ApplyReleases()
    {
        // Taken off the list before any is applied: a failure part-way then leaks clusters
        // rather than releasing one twice when the flush is retried.
        (ulong Cluster, bool Discarded)[] releases = _pendingReleases.ToArray();
        _pendingReleases.Clear();
        int order = _layout.Refcounts.RefcountOrder;
        foreach ((ulong cluster, bool discarded) in releases)
        {
            ulong index = cluster >> Qcow.Format.Refcount.blockBits(_layout.Refcounts);
            if (BlockOffset(index) == 0)
            {
                throw Fail(FormatError.NewInconsistent(Structure.RefcountBlock, cluster << _layout.Geometry.ClusterBits, "a released cluster has no refcount block"));
            }

            byte[] block = RefcountBlock(index);
            ulong count = Qcow.Format.Refcount.get(order, block, EntryInBlock(cluster));
            if (count == 0)
            {
                throw Fail(FormatError.NewInconsistent(Structure.RefcountBlock, cluster << _layout.Geometry.ClusterBits, "a released cluster's refcount is already 0"));
            }

            Qcow.Format.Refcount.set(order, block, EntryInBlock(cluster), count - 1);
            CountChange(index, count, count - 1);
            _blockCache!.MarkDirty((long)BlockOffset(index));
            if (count == 1)
            {
                FirstFreeCluster = Math.Min(FirstFreeCluster, cluster);
                _l2Cache.Forget((long)(cluster << _layout.Geometry.ClusterBits));
                if (discarded && _passDiscards)
                {
                    // No durable mapping names the cluster any more (releases wait for that), so
                    // its bytes may go: QEMU discards them in the file as it frees the cluster.
                    _storage.Discard((long)(cluster << _layout.Geometry.ClusterBits), _layout.ClusterSize);
                }
            }
        }
    }

    // ---- Table I/O ----

    private int EntryInBlock(ulong cluster) => (int)(cluster & (Qcow.Format.Refcount.entriesPerBlock(_layout.Refcounts) - 1));

    private byte[] RefcountBlock(ulong index)
    {
        ulong offset = BlockOffset(index);
        byte[]? data = _blockCache!.TryGet((long)offset);
        if (data != null)
        {
            return data;
        }

        ulong where = _refcountTableOffset + (index * 8);
        if (!GeometryModule.isClusterAligned(_layout.Geometry, offset))
        {
            // As QEMU: a refcount block it would have to use, misplaced, is fatal corruption.
            MarkCorrupt();
            throw Fail(FormatError.NewCorruptionFound(Structure.RefcountTable, where, $"Refblock offset 0x{offset:x} unaligned (reftable index: {(index == 0 ? "0" : $"0x{index:x}")})"));
        }

        byte[] loaded = LoadTable(_blockCache, offset, _layout.ClusterSize, Structure.RefcountTable, where);
        if (_tablesPastEnd.Contains(offset))
        {
            // Its zeros would hand out clusters that are in use.
            _blockCache.Forget((long)offset);
            throw Fail(FormatError.NewEntryOutOfRange(Structure.RefcountTable, where, offset));
        }

        if (!_freeEntries.ContainsKey(index))
        {
            CountFree(index, loaded);
        }

        return loaded;
    }

    /// <summary>
    /// Loads a table into the cache. Bytes past the end of the file read as zeros, as QEMU reads
    /// them (an L2 table there maps nothing); such a table is remembered, so that it is never
    /// written: its entries would grow the file to wherever a hostile entry points.
    /// </summary>
    private byte[] LoadTable(MetadataCache cache, ulong offset, int bytes, Structure pointer, ulong where)
    {
        if (offset > Qcow.Format.Limits.MaxRequestEnd - (ulong)bytes)
        {
            throw Fail(FormatError.NewEntryOutOfRange(pointer, where, offset));
        }

        _storage.Announce(cache == _l2Cache ? QcowDriverEvent.L2Load : QcowDriverEvent.RefblockLoad);
        byte[] data = cache.Insert((long)offset, dirty: false);
        int n;
        try
        {
            n = offset < (ulong)_storage.Length ? _storage.Read((long)offset, data.AsSpan(0, bytes)) : 0;
        }
        catch
        {
            // A table that could not be read must not stay cached as zeros: it would map nothing
            // to the next request, and a write would then replace what the table really maps.
            cache.Forget((long)offset);
            throw;
        }

        data.AsSpan(n, bytes - n).Clear();
        if (n < bytes)
        {
            _tablesPastEnd.Add(offset);
        }

        return data;
    }

    /// <summary>
    /// Reads a table of big-endian entries. Entries past the end of the file read as 0, as QEMU
    /// reads them, so only what the file holds is allocated: a hostile size cannot exhaust memory.
    /// Such a table is not written, though: its entries would go wherever a hostile header points
    /// and grow the file that far. An image opened for writing must hold its tables whole.
    /// </summary>
    private ulong[] ReadTable(ulong offset, int entries, Structure structure)
    {
        if (offset > Qcow.Format.Limits.MaxRequestEnd || (ulong)entries * 8 > Qcow.Format.Limits.MaxRequestEnd - offset)
        {
            // QEMU's words (its read fails with EIO there), as a format error: the header put it there.
            throw Fail(FormatError.NewUnreadable(structure, offset));
        }

        if (_storage.CanWrite)
        {
            RefuseTruncatedForWriting(_storage, offset, entries, structure);
        }

        int count = (int)Math.Min(entries, Math.Max(0, (_storage.Length - (long)offset) / 8));
        var table = new ulong[count];
        byte[] bytes = new byte[Math.Min(count * 8L, 1 << 20)];
        for (int done = 0; done < count;)
        {
            int n = Math.Min(count - done, bytes.Length / 8);
            _storage.Read((long)offset + done * 8L, bytes.AsSpan(0, n * 8));
            for (int i = 0; i < n; i++)
            {
                table[done + i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
            }

            done += n;
        }

        _logger.LogDebug("{Image}: read {Structure} at 0x{Offset:x}, {Count} of {Entries} entries", _layout.Path, structure, offset, count, entries);
        return table;
    }

    /// <summary>A table that ends past the end of the file reads as zeros there, but is never written to.</summary>
    public static void RefuseTruncatedForWriting(IStorage storage, ulong offset, int entries, Structure structure)
    {
        if (offset + (ulong)entries * 8 > (ulong)storage.Length)
        {
            throw FormatErrors.ToException(FormatError.NewTruncated(structure, offset, (ulong)entries * 8), storage.Path);
        }
    }

    private void WriteChunks(HashSet<int> chunks, ulong[] table, ulong offset, int entries, MetadataRole role)
    {
        Span<byte> bytes = stackalloc byte[ChunkEntries * 8];
        foreach (int chunk in chunks)
        {
            int first = chunk * ChunkEntries;
            int n = Math.Min(ChunkEntries, entries - first);
            for (int i = 0; i < n; i++)
            {
                ulong value = first + i < table.Length ? table[first + i] : 0;
                BinaryPrimitives.WriteUInt64BigEndian(bytes[(i * 8)..], value);
            }

            Guard(offset + (ulong)first * 8, (ulong)n * 8, role);
            if (role == MetadataRole.ActiveL1)
            {
                _storage.Announce(QcowDriverEvent.L1Update);
            }

            _storage.Write((long)offset + first * 8L, bytes[..(n * 8)]);
        }

        chunks.Clear();
    }

    private void WriteL2Table(long offset, byte[] data)
    {
        _storage.Announce(QcowDriverEvent.L2Update);
        WriteMetadata(offset, data, MetadataRole.ActiveL2);
    }

    private void WriteRefcountBlock(long offset, byte[] data)
    {
        _storage.Announce(QcowDriverEvent.RefblockUpdate);
        WriteMetadata(offset, data, MetadataRole.RefcountBlock);
    }

    private void WriteMetadata(long offset, ReadOnlySpan<byte> data, MetadataRole role)
    {
        Guard((ulong)offset, (ulong)data.Length, role);
        _storage.Write(offset, data);
    }

    private QcowFormatException Fail(FormatError error) => FormatErrors.ToException(error, _layout.Path);
}
