// Rebuilding the refcounts of a dirty image (lazy refcounts left stale by a crash) before it is
// written, as QEMU does on a read-write open: count every reference, write new refcount
// structures past the end of the file, switch the header to them, then clear the dirty bit.
using System;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal static class RefcountRepair
{
    /// <summary>
    /// qemu-img check -r leaks: each cluster whose stored refcount is higher than the references
    /// to it gets the reference count, in place; corruptions are left for a full repair.
    /// </summary>
    public static long FreeLeaks(IStorage storage, Header header)
    {
        ReferenceCounter references = ReferenceCounter.Count(storage, header, refcountStructures: true);
        var stored = new StoredRefcounts(storage, header);
        long freed = 0;
        for (long c = 0; c < references.Clusters; c++)
        {
            if (stored.Get((ulong)c) is { } refcount && refcount > references.Counts[c])
            {
                stored.Lower((ulong)c, references.Counts[c]);
                freed++;
            }
        }

        stored.WriteBack();
        return freed;
    }

    /// <summary>
    /// The first cluster past everything the tables name, where new structures can go without
    /// landing on one still in use; references absurdly far past the end (a hostile image) are
    /// not followed there.
    /// </summary>
    public static ulong FreeFrom(ReferenceCounter references, int clusterBits)
    {
        ulong inFile = (ulong)references.Counts.Length;
        return references.ClustersReferenced <= (2 * inFile) + (Limits.MaxPastEndBytes >> clusterBits) ? Math.Max(inFile, references.ClustersReferenced) : inFile;
    }

    public static void Rebuild(IStorage storage, Header header, ILogger logger)
    {
        (RefcountRebuild.Rebuilt rebuilt, long problems) = Place(storage, header, HeaderModule.refcountGeometry(header));

        // One header write points at the new structures; then, with refcounts right again, the
        // dirty bit goes.
        storage.Write(HeaderEncode.RefcountTableFieldsOffset, HeaderEncode.refcountTableFields(rebuilt.TableOffset, rebuilt.TableClusters));
        storage.Flush();
        if (header.Version >= 3)
        {
            // Version 2 has no feature bits: byte 72 starts its extensions.
            storage.Write(HeaderEncode.IncompatibleFieldOffset, HeaderEncode.featureField(header.IncompatibleFeatures & ~HeaderModule.DirtyBit));
            storage.Flush();
        }
        logger.LogRefcountsRebuilt(storage.Path, rebuilt.TableOffset, problems);
    }

    /// <summary>
    /// Counts every reference and writes refcount structures of the given geometry holding the
    /// counts, durable, where nothing lives; the header still names the old ones. Returns them,
    /// and the problems the count found.
    /// </summary>
    public static (RefcountRebuild.Rebuilt Rebuilt, long Problems) Place(IStorage storage, Header header, RefcountGeometry geometry)
    {
        ReferenceCounter references = ReferenceCounter.Count(storage, header, refcountStructures: false);
        RefcountRebuild.Rebuilt rebuilt = RefcountRebuild.layout(geometry, references.Counts, FreeFrom(references, header.ClusterBits)).OrThrow(storage.Path);
        storage.Write((long)rebuilt.BlocksOffset, rebuilt.Blocks);
        storage.Write((long)rebuilt.TableOffset, rebuilt.Table);
        storage.Flush();
        return (rebuilt, references.Corruptions);
    }
}
