// Writes a new metadata generation and switches to it (Generation.fs says why snapshots change
// this way). In order: everything the current header names is counted, so that nothing of it is
// overwritten; the new active L1 table, the new snapshots' L1 tables and the snapshot table are
// written into free clusters; the references of that state are counted; every active L2 table
// whose COPIED flags the counts contradict is copied with the flags put right; the refcount
// structures counting it all are written; everything is flushed; then the header's first sector
// names the new generation, and is flushed. What only the old generation used is free from then on.
using System;
using System.Collections.Generic;
using System.Linq;
using Qcow.Format;

namespace Qcow.IO;

internal static class MetadataGeneration
{
    /// <summary>
    /// A snapshot of the new table: an existing entry, its L1 table where it is, or a new one
    /// (<paramref name="CopiesActive"/>) whose L1 table is a copy of the new active one.
    /// </summary>
    public sealed record SnapshotTarget(Snapshot Entry, bool CopiesActive);

    /// <summary>The state to switch to: the active L1 entries (flags are recomputed), its size, the virtual size, the snapshots in table order.</summary>
    public sealed record Target(ulong[] ActiveL1, uint L1Size, ulong VirtualSize, IReadOnlyList<SnapshotTarget> Snapshots);

    /// <summary>Bytes of the header's first sector that name a generation: up to the end of snapshots_offset.</summary>
    private const int SwitchedBytes = 72;

    /// <summary>Writes <paramref name="target"/> and switches the image to it; returns the header now on disk and the snapshots as written.</summary>
    public static (Header Header, IReadOnlyList<Snapshot> Snapshots) Switch(IStorage storage, Header header, Target target)
    {
        int bits = header.ClusterBits;
        ulong clusterSize = 1UL << bits;
        var free = new FreeClusters(ReferenceCounter.Count(storage, header, refcountStructures: true).Counts);

        ulong l1Clusters = Math.Max(1, (target.L1Size * 8UL + clusterSize - 1) >> bits);
        ulong activeAt = free.Take(l1Clusters) << bits;
        var snapshots = new List<Snapshot>();
        var copies = new List<ulong>();
        foreach (SnapshotTarget s in target.Snapshots)
        {
            if (!s.CopiesActive)
            {
                snapshots.Add(SnapshotModule.normalized(header.Size, s.Entry));
                continue;
            }

            ulong at = free.Take(l1Clusters) << bits;
            copies.Add(at);
            Snapshot e = s.Entry;
            snapshots.Add(new Snapshot(at, target.L1Size, e.Id, e.Name, e.DateSeconds, e.DateNanoseconds, e.VmClockNanoseconds, e.VmStateSize, e.ExtraData));
        }

        byte[] table = SnapshotModule.encodeTable(Microsoft.FSharp.Collections.ListModule.OfSeq(snapshots));
        ulong tableAt = table.Length == 0 ? 0 : free.Take(((ulong)table.Length + clusterSize - 1) >> bits) << bits;
        if (table.Length > 0)
        {
            storage.Write((long)tableAt, table);
        }

        ulong[] active = new ulong[target.L1Size];
        Array.Copy(target.ActiveL1, active, Math.Min(active.Length, target.ActiveL1.Length));
        WriteL1(storage, active, activeAt, copies);
        Header counted = HeaderModule.withGeneration(header, target.VirtualSize, activeAt, target.L1Size, tableAt, (uint)snapshots.Count, header.RefcountTableOffset, header.RefcountTableClusters);
        ReferenceCounter references = ReferenceCounter.Count(storage, counted, refcountStructures: false);
        if (references.FirstOverflow is { } overflow)
        {
            throw new QcowRefcountOverflowException(storage.Path, 1 << header.RefcountOrder, $"cluster at 0x{overflow << bits:x}");
        }

        // Tables that name clusters twice, past the end or off their alignment cannot be carried
        // into a new generation: nothing has been switched, so the image stays as it was.
        if (references.Corruptions > 0)
        {
            throw FormatErrors.ToException(
                FormatError.NewInconsistent(Structure.L1Table, activeAt, $"the tables the change keeps have {references.Corruptions} problem(s), first: {references.Messages[0]}; repair the image first (check -r all)"),
                storage.Path);
        }

        uint[] counts = references.Counts;

        // Each active L2 table whose flags the counts contradict gets a copy with them right; the
        // active L1 (and its new copies) then name the copy, and the old table loses those references.
        EntryFormat format = HeaderModule.entryFormat(header);
        var moved = new Dictionary<ulong, ulong>();
        byte[] tableBytes = new byte[clusterSize];
        foreach (ulong l2 in active.Select(e => e & L1Entry.OffsetMask).Where(t => t != 0).Distinct().ToList())
        {
            storage.Read((long)l2, tableBytes);
            ulong[] entries = TableEntries.Decode(tableBytes);

            uint[] before = counts;
            var fixedEntries = Generation.l2Flags(format, bits, Microsoft.FSharp.Core.FuncConvert.FromFunc<ulong, uint>(c => c < (ulong)before.Length ? before[c] : 0), entries);
            if (fixedEntries is null)
            {
                continue;
            }

            ulong copy = free.Take(1) << bits;
            storage.Write((long)copy, TableEntries.Encode(fixedEntries.Value));
            moved[l2] = copy;
        }

        uint paths = 1 + (uint)copies.Count;
        counts = Grown(counts, free.End);
        for (int i = 0; i < active.Length; i++)
        {
            if (moved.TryGetValue(active[i] & L1Entry.OffsetMask, out ulong copy))
            {
                counts[(active[i] & L1Entry.OffsetMask) >> bits] -= paths;
                counts[copy >> bits] += paths;
                active[i] = copy | (active[i] & ~L1Entry.OffsetMask);
            }
        }

        uint[] final = counts;
        active = Generation.l1Flags(bits, Microsoft.FSharp.Core.FuncConvert.FromFunc<ulong, uint>(c => c < (ulong)final.Length ? final[c] : 0), active);
        WriteL1(storage, active, activeAt, copies);

        // The refcount structures go where neither generation has anything.
        Func<ulong, bool> busy = c => free.IsBusy(c) || (c < (ulong)final.Length && final[c] != 0);
        RefcountRebuild.Rebuilt refcounts = Generation.refcountsWhereFree(HeaderModule.refcountGeometry(header), final, Microsoft.FSharp.Core.FuncConvert.FromFunc(busy)).OrThrow(storage.Path);
        RefcountRepair.Write(storage, refcounts);

        Header switched = HeaderModule.withGeneration(header, target.VirtualSize, activeAt, target.L1Size, tableAt, (uint)snapshots.Count, refcounts.TableOffset, refcounts.TableClusters);
        byte[] encoded = HeaderEncode.encode(switched).OrThrow(storage.Path);
        storage.Write(0, encoded.AsSpan(0, SwitchedBytes));
        storage.Flush();
        return (switched, snapshots);
    }

    /// <summary>The active L1 table at its new place, and the same entries in each new snapshot's L1 table.</summary>
    private static void WriteL1(IStorage storage, ulong[] entries, ulong activeAt, List<ulong> copies)
    {
        byte[] bytes = TableEntries.Encode(entries);
        storage.Write((long)activeAt, bytes);
        foreach (ulong at in copies)
        {
            storage.Write((long)at, bytes);
        }
    }

    private static uint[] Grown(uint[] counts, ulong length) =>
        (ulong)counts.Length >= length ? counts : [.. counts, .. new uint[length - (ulong)counts.Length]];
}
