// The first step of a full repair: table entries that no refcount can make right. Reserved bits
// are cleared (the mapping is intact); an entry whose offset is misaligned or lies past the end of
// the file, whose data is lost already, is dropped: a guest cluster then reads as zeros (as it
// read before, the file having nothing there) or, before version 3, from the backing file.
using System;
using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal static class BrokenEntries
{
    /// <summary>Fixes the entries of the active tree and of every snapshot's; returns how many changed.</summary>
    public static long Fix(IStorage storage, Header header, ILogger logger)
    {
        long changed = FixTree(storage, header, header.L1TableOffset, header.L1Size);
        foreach (Snapshot snapshot in SnapshotTable.Read(storage, header).Entries)
        {
            changed += FixTree(storage, header, snapshot.L1TableOffset, snapshot.L1Size);
        }

        if (changed > 0)
        {
            storage.Flush();
            logger.LogInformation("{Image}: {Count} broken table entries repaired", storage.Path, changed);
        }

        return changed;
    }

    private static long FixTree(IStorage storage, Header header, ulong l1Offset, uint l1Size)
    {
        long cs = 1L << header.ClusterBits;
        long within = Math.Max(0, Math.Min((long)l1Size * 8, storage.Length - (long)l1Offset)) & ~7L;
        byte[] l1 = new byte[within];
        storage.Read((long)l1Offset, l1);
        byte[] l2 = new byte[cs];
        long changed = 0;
        for (int i = 0; i < l1.Length / 8; i++)
        {
            ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan(i * 8));
            ulong table = entry & L1Entry.OffsetMask;
            ulong fixedEntry = entry & ~L1Entry.ReservedMask;
            if (table != 0 && (((long)table & (cs - 1)) != 0 || PastEnd(storage, (long)table, cs, cs)))
            {
                fixedEntry = 0;
            }
            else if (table != 0)
            {
                changed += FixL2Table(storage, header, (long)table, l2);
            }

            if (fixedEntry != entry)
            {
                BinaryPrimitives.WriteUInt64BigEndian(l1.AsSpan(i * 8), fixedEntry);
                storage.Write((long)l1Offset + i * 8L, l1.AsSpan(i * 8, 8));
                changed++;
            }
        }

        return changed;
    }

    private static long FixL2Table(IStorage storage, Header header, long table, byte[] l2)
    {
        int bits = header.ClusterBits;
        long cs = 1L << bits;
        EntryFormat format = HeaderModule.entryFormat(header);
        int entryBytes = HeaderModule.geometry(header).L2EntryBytes;
        ulong dropped = header.Version >= 3 ? L2Entry.ZeroFlag : 0UL;
        Array.Clear(l2);
        storage.Read(table, l2);
        long changed = 0;
        for (int j = 0; j < l2.Length / entryBytes; j++)
        {
            ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * entryBytes));
            ulong fixedEntry = entry;
            switch (L2Entry.clusterType(format, entry))
            {
                case ClusterType.Compressed:
                    var (host, length) = L2Entry.compressedStream(bits, entry);
                    fixedEntry = PastEnd(storage, (long)host, length, cs) ? dropped : entry & ~L2Entry.CopiedFlag;
                    break;
                case ClusterType.Normal or ClusterType.ZeroAllocated:
                    long offset = (long)(entry & L2Entry.OffsetMask);
                    fixedEntry = (offset & (cs - 1)) != 0 || PastEnd(storage, offset, cs, cs) ? dropped : entry & ~L2Entry.StandardReservedMask;
                    break;
                default:
                    fixedEntry = entry & ~L2Entry.StandardReservedMask;
                    break;
            }

            if (fixedEntry != entry)
            {
                BinaryPrimitives.WriteUInt64BigEndian(l2.AsSpan(j * entryBytes), fixedEntry);
                changed++;
            }
        }

        if (changed > 0)
        {
            storage.Write(table, l2);
        }

        return changed;
    }

    /// <summary>QEMU's rule: a reference may reach less than one cluster past the end of the file.</summary>
    private static bool PastEnd(IStorage storage, long offset, long length, long clusterSize) =>
        offset + length - storage.Length >= clusterSize;
}
