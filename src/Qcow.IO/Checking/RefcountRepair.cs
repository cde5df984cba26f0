// Putting refcounts right: freeing leaks an operation left, repairing a dirty image (lazy
// refcounts left stale by a crash) before it is written as QEMU does on a read-write open, and
// writing new refcount structures, in the image's holes (a repair) or past everything in use.
using System;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal static class RefcountRepair
{
    /// <summary>
    /// Frees leaked clusters (qemu-img check -r leaks) once an operation has left some behind:
    /// each cluster whose stored refcount is higher than the references to it gets the reference
    /// count, in place.
    /// </summary>
    public static void FreeLeaks(IStorage storage, Header header) =>
        ImageChecker.Repair(storage, header, RefcountCheck.Repair.Leaks);

    /// <summary>The first cluster past everything the counted tables name, by the core's rule.</summary>
    public static ulong FreeFrom(ReferenceCounter references, int clusterBits) =>
        RefcountRebuild.freeFrom((ulong)references.Counts.Length, references.ClustersReferenced, clusterBits);

    /// <summary>
    /// Repairs the refcounts a crash left stale under lazy refcounts, as QEMU does when it opens
    /// a dirty image read-write (check -r all), which also clears the dirty bit.
    /// </summary>
    public static void RepairDirty(IStorage storage, Header header, ILogger logger)
    {
        CheckReport report = ImageChecker.Repair(storage, header, RefcountCheck.Repair.All);
        logger.LogRefcountsRepaired(storage.Path, report.CorruptionsFixed + report.LeaksFixed);
    }

    /// <summary>
    /// New refcount structures for a repair, where QEMU's check -r all puts them: the counted
    /// references (the old structures among them) are written as blocks in the image's holes,
    /// then the table; once they are durable, one header write names them.
    /// </summary>
    public static void PlaceInHoles(IStorage storage, Header header, ReferenceCounter references)
    {
        RefcountRebuild.Rebuilt placed = RefcountRebuild.placeInHoles(HeaderModule.refcountGeometry(header), references.Counts, (ulong)references.Clusters).OrThrow(storage.Path);
        Write(storage, placed);
        storage.Write(HeaderEncode.RefcountTableFieldsOffset, HeaderEncode.refcountTableFields(placed.TableOffset, placed.TableClusters));
        storage.Flush();
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
        Write(storage, rebuilt);
        return (rebuilt, references.Corruptions);
    }

    /// <summary>Writes new refcount structures where they were laid out, and makes them durable; the header still names the old ones.</summary>
    public static void Write(IStorage storage, RefcountRebuild.Rebuilt rebuilt)
    {
        foreach ((ulong offset, byte[] blocks) in rebuilt.Blocks)
        {
            storage.Write((long)offset, blocks);
        }

        storage.Write((long)rebuilt.TableOffset, rebuilt.Table);
        storage.Flush();
    }
}
