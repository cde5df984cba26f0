// Rebuilding the refcounts of a dirty image (lazy refcounts left stale by a crash) before it is
// written, as QEMU does on a read-write open: count every reference, write new refcount
// structures past the end of the file, switch the header to them, then clear the dirty bit.
using System;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal static class RefcountRepair
{
    public static void Rebuild(IStorage storage, Header header, ILogger logger)
    {
        ReferenceCounter references = ReferenceCounter.Count(storage, header);
        // New structures go past every cluster a table names, so that none lands on one still in
        // use; references absurdly far past the end (a hostile image) are not followed there.
        ulong inFile = (ulong)references.Counts.Length;
        ulong start = references.ClustersReferenced <= 2 * inFile + (Limits.MaxPastEndBytes >> header.ClusterBits) ? Math.Max(inFile, references.ClustersReferenced) : inFile;
        RefcountRebuild.Rebuilt rebuilt = RefcountRebuild
            .layout(HeaderModule.refcountGeometry(header), references.Counts, start)
            .OrThrow(storage.Path);

        // The new structures first, durable; then one header write points at them; then, with
        // refcounts right again, the dirty bit goes.
        storage.Write((long)rebuilt.BlocksOffset, rebuilt.Blocks);
        storage.Write((long)rebuilt.TableOffset, rebuilt.Table);
        storage.Flush();
        storage.Write(HeaderEncode.RefcountTableFieldsOffset, HeaderEncode.refcountTableFields(rebuilt.TableOffset, rebuilt.TableClusters));
        storage.Flush();
        storage.Write(HeaderEncode.IncompatibleFieldOffset, HeaderEncode.featureField(header.IncompatibleFeatures & ~HeaderModule.DirtyBit));
        storage.Flush();
        logger.LogRefcountsRebuilt(storage.Path, rebuilt.TableOffset, references.PastEnd);
    }
}
