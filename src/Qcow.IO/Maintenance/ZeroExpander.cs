// Zero clusters expanded before a downgrade to compat 0.10 (ZeroExpansion.fs decides what each
// entry needs). The image stays a valid version 3 image throughout, with the dirty bit set
// first: each L2 table changes in place only once the zeros it will name are written and
// flushed, so the guest reads the same bytes at every point, and the refcounts that new clusters
// and dropped references need are left to the rebuild a dirty image gets (here, at the end; after
// a crash, at the next read-write open or check -r, in QEMU too).
using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal static class ZeroExpander
{
    /// <summary>Expands every zero cluster of the active state and the snapshots; returns the header after, refcounts rebuilt, dirty bit clear.</summary>
    public static Header Expand(IStorage storage, Header header, ILogger logger)
    {
        int bits = header.ClusterBits;
        EntryFormat format = HeaderModule.entryFormat(header);
        bool hasBacking = Microsoft.FSharp.Core.OptionModule.ToObj(header.BackingFileName) is { Length: > 0 };
        uint[] counts = ReferenceCounter.Count(storage, header, refcountStructures: true).Counts;
        var free = new FreeClusters(counts);
        var references = Microsoft.FSharp.Core.FuncConvert.FromFunc<ulong, uint>(c => c < (ulong)counts.Length ? counts[c] : 0);

        storage.Write(HeaderEncode.IncompatibleFieldOffset, HeaderEncode.featureField(header.IncompatibleFeatures | HeaderModule.DirtyBit));
        storage.Flush();

        byte[] zeros = new byte[1 << bits];
        byte[] table = new byte[1 << bits];
        foreach (ulong l2 in L2Tables(storage, header))
        {
            storage.Read((long)l2, table);
            ulong[] entries = TableEntries.Decode(table);
            uint tableReferences = references.Invoke(l2 >> bits);
            var needs = entries.Select(e => ZeroExpansion.expansion(format, hasBacking, tableReferences, references, e)).ToArray();
            if (needs.All(n => n.IsUnchanged))
            {
                continue;
            }

            ulong[] expanded = new ulong[entries.Length];
            for (int i = 0; i < entries.Length; i++)
            {
                ulong host = needs[i] switch
                {
                    ZeroExpansion.Expansion.ZeroInPlace inPlace => inPlace.host,
                    { IsNewCluster: true } => free.Take(1) << bits,
                    _ => 0,
                };
                if (host != 0)
                {
                    storage.Write((long)host, zeros);
                }

                expanded[i] = ZeroExpansion.expanded(tableReferences, entries[i], needs[i], host);
            }

            // The zeros are durable before the table names them.
            storage.Flush();
            storage.Write((long)l2, TableEntries.Encode(expanded));
            storage.Flush();
        }

        RefcountRepair.RepairDirty(storage, QcowDevice.ReadHeader(storage), logger);
        return QcowDevice.ReadHeader(storage);
    }

    /// <summary>Every L2 table the active L1 table or a snapshot's names, once each.</summary>
    private static IEnumerable<ulong> L2Tables(IStorage storage, Header header)
    {
        var l1Tables = new List<(ulong Offset, uint Entries)> { (header.L1TableOffset, header.L1Size) };
        l1Tables.AddRange(SnapshotTable.Read(storage, header).Entries.Select(s => (s.L1TableOffset, s.L1Size)));
        var seen = new HashSet<ulong>();
        foreach ((ulong offset, uint entries) in l1Tables)
        {
            byte[] bytes = new byte[entries * 8UL];
            storage.Read((long)offset, bytes);
            foreach (ulong entry in TableEntries.Decode(bytes))
            {
                ulong l2 = entry & L1Entry.OffsetMask;
                if (l2 != 0 && seen.Add(l2))
                {
                    yield return l2;
                }
            }
        }
    }
}
