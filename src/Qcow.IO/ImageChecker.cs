// Checking a qcow2 image as qemu-img check does: references counted from the tables against the
// stored refcounts (fewer stored = corruption, more = leak), COPIED flags against refcounts, and
// the figures qemu-img reports (allocated, fragmented and compressed clusters, image end).
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

/// <summary>What a check found; the counts mean what qemu-img check's counts mean.</summary>
internal sealed record CheckReport(
    long Corruptions,
    long Leaks,
    long CheckErrors,
    long ImageEndOffset,
    long TotalClusters,
    long AllocatedClusters,
    long FragmentedClusters,
    long CompressedClusters,
    IReadOnlyList<string> Messages);

internal static class ImageChecker
{
    public static CheckReport Check(IStorage storage, Header header)
    {
        ReferenceCounter references = ReferenceCounter.Count(storage, header);
        references.AddRefcountStructures();
        var stored = new StoredRefcounts(storage, header);
        var messages = new List<string>();
        long corruptions = references.PastEnd;
        long leaks = 0;
        long highest = -1;
        if (references.PastEnd > 0)
        {
            messages.Add($"ERROR {references.PastEnd} references point past the end of the file");
        }

        uint[] counts = references.Counts;
        for (long c = 0; c < counts.Length; c++)
        {
            ulong refcount = stored.Get((ulong)c);
            if (refcount > 0 || counts[c] > 0)
            {
                highest = c;
            }

            if (refcount < counts[c])
            {
                corruptions++;
                messages.Add($"ERROR cluster {c} refcount={refcount} reference={counts[c]}");
            }
            else if (refcount > counts[c])
            {
                leaks++;
                messages.Add($"Leaked cluster {c} refcount={refcount} reference={counts[c]}");
            }
        }

        var active = new ActiveTreeFigures(storage, header, stored, messages);
        ulong cs = 1UL << header.ClusterBits;
        return new CheckReport(
            corruptions + active.CopiedErrors,
            leaks,
            0,
            (highest + 1) * (long)cs,
            (long)((header.Size + cs - 1) / cs),
            active.Allocated,
            active.Fragmented,
            active.Compressed,
            messages);
    }

    /// <summary>Stored refcounts, read block by block as they are needed.</summary>
    private sealed class StoredRefcounts
    {
        private readonly IStorage _storage;
        private readonly RefcountGeometry _geometry;
        private readonly ulong[] _table;
        private readonly Dictionary<ulong, byte[]?> _blocks = new();

        public StoredRefcounts(IStorage storage, Header header)
        {
            _storage = storage;
            _geometry = HeaderModule.refcountGeometry(header);
            int cs = 1 << header.ClusterBits;
            long available = Math.Max(0, Math.Min((long)header.RefcountTableClusters * cs, storage.Length - (long)header.RefcountTableOffset));
            byte[] bytes = new byte[available & ~7L];
            storage.Read((long)header.RefcountTableOffset, bytes);
            _table = new ulong[bytes.Length / 8];
            for (int i = 0; i < _table.Length; i++)
            {
                _table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8)) & ~Refcount.TableReservedMask;
            }
        }

        public ulong Get(ulong cluster)
        {
            ulong index = cluster >> Refcount.blockBits(_geometry);
            if (index >= (ulong)_table.Length || _table[index] == 0)
            {
                return 0;
            }

            if (!_blocks.TryGetValue(index, out byte[]? block))
            {
                int cs = 1 << _geometry.ClusterBits;
                block = _table[index] < (ulong)_storage.Length && (ulong)_storage.Length - _table[index] >= (ulong)cs ? new byte[cs] : null;
                if (block != null)
                {
                    _storage.Read((long)_table[index], block);
                }

                _blocks[index] = block;
            }

            return block is null ? 0 : Refcount.get(_geometry.RefcountOrder, block, (int)(cluster & (Refcount.entriesPerBlock(_geometry) - 1)));
        }
    }

    /// <summary>COPIED flags and qemu-img's allocation figures, over the active L1 tree.</summary>
    private sealed class ActiveTreeFigures
    {
        public ActiveTreeFigures(IStorage storage, Header header, StoredRefcounts stored, List<string> messages)
        {
            int cs = 1 << header.ClusterBits;
            EntryFormat format = HeaderModule.entryFormat(header);
            long l1Bytes = Math.Max(0, Math.Min((long)header.L1Size * 8, storage.Length - (long)header.L1TableOffset));
            byte[] l1 = new byte[l1Bytes & ~7L];
            storage.Read((long)header.L1TableOffset, l1);
            byte[] l2 = new byte[cs];
            for (int i = 0; i < l1.Length / 8; i++)
            {
                ulong l1Entry = BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan(i * 8));
                ulong table = l1Entry & L1Entry.OffsetMask;
                if (table == 0 || table + (ulong)cs > (ulong)storage.Length)
                {
                    continue;
                }

                bool tableCopied = (l1Entry & L1Entry.CopiedFlag) != 0;
                if ((stored.Get(table >> header.ClusterBits) == 1) != tableCopied)
                {
                    CopiedErrors++;
                    messages.Add($"ERROR OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={l1Entry:x} refcount={stored.Get(table >> header.ClusterBits)}");
                }

                // qemu-img 7.2 measures fragmentation within each L2 table.
                ulong nextContiguous = 0;
                storage.Read((long)table, l2);
                for (int j = 0; j < cs / 8; j++)
                {
                    ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * 8));
                    var mapping = L2Entry.classify(format, entry);
                    if (mapping.IsError)
                    {
                        continue;
                    }

                    L2Mapping m = mapping.ResultValue;
                    if (m.IsCompressed)
                    {
                        Allocated++;
                        Compressed++;
                        Fragmented++;
                    }
                    else if (m.IsNormal || m.IsZeroAllocated)
                    {
                        ulong host = m.IsNormal ? m.Host : m.ZeroHost;
                        bool copied = m.IsNormal ? m.Copied : m.ZeroCopied;
                        Allocated++;
                        if (nextContiguous != 0 && host != nextContiguous)
                        {
                            Fragmented++;
                        }

                        nextContiguous = host + (ulong)cs;
                        ulong refcount = stored.Get(host >> header.ClusterBits);
                        if ((refcount == 1) != copied)
                        {
                            CopiedErrors++;
                            messages.Add($"ERROR OFLAG_COPIED data cluster: l2_entry={entry:x} refcount={refcount}");
                        }
                    }
                }
            }
        }

        public long Allocated { get; }

        public long Fragmented { get; }

        public long Compressed { get; }

        public long CopiedErrors { get; }
    }
}
