// COPIED flags against stored refcounts, over the active tree, as QEMU's check_oflag_copied
// does: an L1 or L2 entry carries COPIED exactly when its cluster's refcount is 1. A repair sets
// or clears the flags to agree, once the refcounts are right.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

internal static class CopiedFlags
{
    /// <summary>
    /// Counts the entries whose flag disagrees with the stored refcount, adding a message for
    /// each; with <paramref name="repair"/>, makes them agree.
    /// </summary>
    public static long Visit(IStorage storage, Header header, StoredRefcounts stored, List<string> messages, bool repair)
    {
        string verdict = repair ? "Repairing" : "ERROR";
        int cs = 1 << header.ClusterBits;
        EntryFormat format = HeaderModule.entryFormat(header);
        int entryBytes = HeaderModule.geometry(header).L2EntryBytes;
        long l1Bytes = Math.Max(0, Math.Min((long)header.L1Size * 8, storage.Length - (long)header.L1TableOffset));
        byte[] l1 = new byte[l1Bytes & ~7L];
        storage.Read((long)header.L1TableOffset, l1);
        byte[] l2 = new byte[cs];
        long mismatches = 0;
        for (int i = 0; i < l1.Length / 8; i++)
        {
            ulong l1Entry = BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan(i * 8));
            ulong table = l1Entry & L1Entry.OffsetMask;
            if (table == 0)
            {
                continue;
            }

            if (stored.Get(table >> header.ClusterBits) is { } tableRefcount && (tableRefcount == 1) != ((l1Entry & L1Entry.CopiedFlag) != 0))
            {
                mismatches++;
                messages.Add($"{verdict} OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={l1Entry:x} refcount={tableRefcount}");
                if (repair)
                {
                    ulong fixedEntry = tableRefcount == 1 ? l1Entry | L1Entry.CopiedFlag : l1Entry & ~L1Entry.CopiedFlag;
                    storage.Write((long)header.L1TableOffset + i * 8L, BigEndian(fixedEntry));
                }
            }

            Array.Clear(l2);
            if (table < (ulong)storage.Length)
            {
                storage.Read((long)table, l2);
            }

            bool tableChanged = false;
            for (int j = 0; j < cs / entryBytes; j++)
            {
                ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * entryBytes));
                ClusterType type = L2Entry.clusterType(format, entry);
                // Clusters of an external data file count as referenced once, as QEMU counts them.
                if (type is not (ClusterType.Normal or ClusterType.ZeroAllocated)
                    || (format.HasExternalData ? 1UL : stored.Get((entry & L2Entry.OffsetMask) >> header.ClusterBits)) is not { } refcount
                    || (refcount == 1) == ((entry & L2Entry.CopiedFlag) != 0))
                {
                    continue;
                }

                mismatches++;
                messages.Add($"{verdict} OFLAG_COPIED data cluster: l2_entry={entry:x} refcount={refcount}");
                ulong fixedEntry = refcount == 1 ? entry | L2Entry.CopiedFlag : entry & ~L2Entry.CopiedFlag;
                BinaryPrimitives.WriteUInt64BigEndian(l2.AsSpan(j * entryBytes), fixedEntry);
                tableChanged = true;
            }

            if (repair && tableChanged)
            {
                storage.Write((long)table, l2);
            }
        }

        if (repair && mismatches > 0)
        {
            storage.Flush();
        }

        return mismatches;
    }

    private static byte[] BigEndian(ulong value)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return bytes;
    }
}
