// Checking a qcow2 image as qemu-img check does: references counted from the tables against the
// stored refcounts (fewer stored = corruption, more = leak), COPIED flags against refcounts, and
// the figures qemu-img reports (allocated, fragmented and compressed clusters, image end).
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
        ReferenceCounter references = ReferenceCounter.Count(storage, header, refcountStructures: true);
        var stored = new StoredRefcounts(storage, header);
        var messages = new List<string>(references.Messages);
        long corruptions = references.Corruptions;
        long leaks = 0;
        long checkErrors = 0;
        // As in QEMU, the image reaches at least to the end of the header's cluster.
        long highest = 0;
        uint[] counts = references.Counts;
        for (long c = 0; c < references.Clusters; c++)
        {
            ulong? found = stored.Get((ulong)c);
            if (found is not { } refcount)
            {
                if (checkErrors == 0)
                {
                    messages.Add($"qcow2: Image is corrupt: {stored.WhyUnreadable((ulong)c)}; further non-fatal corruption events will be suppressed");
                }

                checkErrors++;
                messages.Add($"Can't get refcount for cluster {c}: Input/output error");
                continue;
            }

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

        long copiedErrors = CopiedFlags.Check(storage, header, stored, messages);
        ulong cs = 1UL << header.ClusterBits;
        return new CheckReport(
            corruptions + copiedErrors,
            leaks,
            checkErrors,
            (highest + 1) * (long)cs,
            (long)((header.Size + cs - 1) / cs),
            references.Allocated,
            references.Fragmented,
            references.Compressed,
            messages);
    }
}
