// Checking and repairing a qcow2 image as qemu-img check does (qcow2_check_refcounts): references
// counted from the tables against the stored refcounts (fewer stored = corruption, more = leak),
// COPIED flags against refcounts, and the figures qemu-img reports. A repair follows QEMU's
// order: the comparison is reported, then either every refcount is fixed in place or, when the
// refcount structures themselves are broken, new ones are built; the COPIED flags come last.
using System;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

/// <summary>
/// What a check found and repaired; the counts mean what qemu-img check's counts mean, and
/// Completed is false when the check stopped before its report (qemu-img's "Check failed").
/// </summary>
internal sealed record CheckReport(
    long Corruptions,
    long Leaks,
    long CheckErrors,
    long CorruptionsFixed,
    long LeaksFixed,
    bool Completed,
    long ImageEndOffset,
    long TotalClusters,
    long AllocatedClusters,
    long FragmentedClusters,
    long CompressedClusters,
    IReadOnlyList<string> Messages);

internal static class ImageChecker
{
    public static CheckReport Check(IStorage storage, Header header) => Run(storage, header, RefcountCheck.Repair.Nothing);

    /// <summary>
    /// One check pass that repairs what <paramref name="repair"/> allows, writing as it goes, and
    /// then, as QEMU's check does when nothing is left broken, clears the dirty and corrupt bits.
    /// The report counts what is still wrong after the repairs of this pass.
    /// </summary>
    public static CheckReport Repair(IStorage storage, Header header, RefcountCheck.Repair repair)
    {
        CheckReport report = Run(storage, header, repair);
        ulong stale = HeaderModule.DirtyBit | HeaderModule.CorruptBit;
        header = QcowDevice.ReadHeader(storage);
        if (report.Completed && report.CheckErrors == 0 && report.Corruptions == 0 && header.Version >= 3 && (header.IncompatibleFeatures & stale) != 0)
        {
            storage.Write(HeaderEncode.IncompatibleFieldOffset, HeaderEncode.featureField(header.IncompatibleFeatures & ~stale));
            storage.Flush();
        }

        return report;
    }

    private static CheckReport Run(IStorage storage, Header header, RefcountCheck.Repair repair)
    {
        var messages = new List<string>();
        ReferenceCounter references = ReferenceCounter.Count(storage, header, refcountStructures: true);
        messages.AddRange(references.Messages);
        var stored = new StoredRefcounts(storage, header);
        bool writing = repair != RefcountCheck.Repair.Nothing;
        Comparison found = Compare(references, stored, RefcountCheck.Repair.Nothing, messages, writing);
        if (writing && found.CheckErrors > 0 && header.Version >= 3)
        {
            // As QEMU does when a read-write open meets an unreadable refcount block.
            storage.Write(HeaderEncode.IncompatibleFieldOffset, HeaderEncode.featureField(header.IncompatibleFeatures | HeaderModule.CorruptBit));
            storage.Flush();
        }
        long corruptions = references.Corruptions + found.Corruptions;
        long leaks = found.Leaks;
        long checkErrors = found.CheckErrors;
        long corruptionsFixed = 0;
        long leaksFixed = 0;
        long highest = found.Highest;

        if (found.NeedsRebuild && repair == RefcountCheck.Repair.All)
        {
            messages.Add("Rebuilding refcount structure");
            RefcountRepair.PlaceInHoles(storage, header, references);
            header = QcowDevice.ReadHeader(storage);
            references = ReferenceCounter.Count(storage, header, refcountStructures: true);
            stored = new StoredRefcounts(storage, header);
            // The old structures are leaked now; freeing them is part of the rebuild, so only
            // leaks it could not free are reported.
            Comparison freed = Compare(references, stored, RefcountCheck.Repair.Leaks, messages, writing);
            stored.WriteBack();
            if (freed.NeedsRebuild)
            {
                messages.Add("ERROR rebuilt refcount structure is still broken");
            }

            corruptionsFixed = Math.Max(0, corruptions - references.Corruptions);
            leaksFixed = leaks;
            corruptions = references.Corruptions;
            leaks = freed.Leaks;
            checkErrors += freed.CheckErrors;
            highest = freed.Highest;
        }
        else if (found.NeedsRebuild && repair != RefcountCheck.Repair.Nothing)
        {
            messages.Add("ERROR need to rebuild refcount structures");
            return Report(header, references, corruptions, leaks, checkErrors + 1, 0, 0, completed: false, highest, messages);
        }
        else if (repair != RefcountCheck.Repair.Nothing && (leaks > 0 || found.Corruptions > 0))
        {
            Comparison fixing = Compare(references, stored, repair, messages, writing);
            stored.WriteBack();
            corruptions = references.Corruptions + fixing.Corruptions;
            leaks = fixing.Leaks;
            corruptionsFixed = fixing.CorruptionsFixed;
            leaksFixed = fixing.LeaksFixed;
            highest = fixing.Highest;
        }

        // As in QEMU, -r leaks fixes the flags too when the refcounts are right now.
        bool repairFlags = repair == RefcountCheck.Repair.All
            || (repair == RefcountCheck.Repair.Leaks && checkErrors == 0 && corruptions == 0 && leaks == 0);
        long flags = CopiedFlags.Check(storage, header, stored, messages, repairFlags);
        if (repairFlags)
        {
            corruptionsFixed += flags;
        }
        else
        {
            corruptions += flags;
        }

        return Report(header, references, corruptions, leaks, checkErrors, corruptionsFixed, leaksFixed, completed: true, highest, messages);
    }

    /// <summary>What comparing every cluster's stored refcount with its references found, and fixed.</summary>
    private readonly record struct Comparison(long Corruptions, long Leaks, long CheckErrors, long CorruptionsFixed, long LeaksFixed, bool NeedsRebuild, long Highest);

    /// <summary>
    /// QEMU's compare_refcounts: one line per mismatch; the fixes a repair mode allows are made in
    /// <paramref name="stored"/>. An unreadable refcount block marks an image being repaired
    /// corrupt, as QEMU words it.
    /// </summary>
    private static Comparison Compare(ReferenceCounter references, StoredRefcounts stored, RefcountCheck.Repair repair, List<string> messages, bool writing)
    {
        long corruptions = 0, leaks = 0, checkErrors = 0, corruptionsFixed = 0, leaksFixed = 0, highest = 0;
        bool needsRebuild = references.NeedsRebuild;
        uint[] counts = references.Counts;
        for (long c = 0; c < references.Clusters; c++)
        {
            if (stored.Get((ulong)c) is not { } refcount)
            {
                if (checkErrors == 0)
                {
                    messages.Add(writing
                        ? $"qcow2: Marking image as corrupt: {stored.WhyUnreadable((ulong)c)}; further corruption events will be suppressed"
                        : $"qcow2: Image is corrupt: {stored.WhyUnreadable((ulong)c)}; further non-fatal corruption events will be suppressed");
                }

                checkErrors++;
                messages.Add($"Can't get refcount for cluster {c}: Input/output error");
                continue;
            }

            if (refcount > 0 || counts[c] > 0)
            {
                highest = c;
            }

            RefcountCheck.Verdict verdict = RefcountCheck.verdict(refcount, counts[c]);
            if (verdict.IsAgrees)
            {
                continue;
            }

            needsRebuild |= verdict.IsUnrecorded;
            bool fix = RefcountCheck.repairsInPlace(repair, verdict);
            messages.Add(RefcountCheck.mismatchMessage(fix, (ulong)c, refcount, counts[c]));
            if (fix)
            {
                stored.Set((ulong)c, counts[c]);
                if (verdict.IsLeaked)
                {
                    leaksFixed++;
                }
                else
                {
                    corruptionsFixed++;
                }
            }
            else if (refcount < counts[c])
            {
                corruptions++;
            }
            else
            {
                leaks++;
            }
        }

        return new Comparison(corruptions, leaks, checkErrors, corruptionsFixed, leaksFixed, needsRebuild, highest);
    }

    private static CheckReport Report(Header header, ReferenceCounter references, long corruptions, long leaks, long checkErrors, long corruptionsFixed, long leaksFixed, bool completed, long highest, List<string> messages)
    {
        // As in QEMU, the image reaches at least to the end of the header's cluster.
        ulong cs = 1UL << header.ClusterBits;
        return new CheckReport(
            corruptions,
            leaks,
            checkErrors,
            corruptionsFixed,
            leaksFixed,
            completed,
            (highest + 1) * (long)cs,
            (long)((header.Size + cs - 1) / cs),
            references.Allocated,
            references.Fragmented,
            references.Compressed,
            messages);
    }
}
