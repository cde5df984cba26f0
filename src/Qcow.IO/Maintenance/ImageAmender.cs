// Changing a closed qcow2 image's format options in place, as qemu-img amend does: compat level,
// lazy refcounts, refcount width, as the core's Maintenance.amend decides. New refcount structures
// are made durable first; then one write of the header cluster switches to everything at once.
using System;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal static class ImageAmender
{
    /// <exception cref="InvalidOperationException">The change is one QEMU refuses, or one Qcow cannot make yet; the message says which.</exception>
    public static void Amend(string path, AmendRequest request, ILogger logger)
    {
        using FileStorage storage = FileStorage.Open(path, writable: true);
        Header header = QcowDevice.PrepareForWriting(storage, new DeviceOptions(true, false, 0, logger));
        var decided = Maintenance.amend(header, Microsoft.FSharp.Collections.ListModule.OfSeq(SnapshotTable.Read(storage, header).Entries), request);
        if (decided.IsError)
        {
            throw new InvalidOperationException(decided.ErrorValue);
        }

        AmendPlan plan = decided.ResultValue;
        // Version 2 has no zero flag: zero clusters become unallocated or clusters of zeros first.
        if (plan.Downgrade && ClusterRoles.Of(storage, header).HasZeroClusters)
        {
            header = ZeroExpander.Expand(storage, header, logger);
        }

        // Version 2 has no autoclear bits to keep bitmaps valid: they go, their clusters freed
        // (QEMU leaves them leaked).
        if (plan.Version == 2 && header.AutoclearFeatures != 0)
        {
            header = QcowDevice.DropBitmaps(storage, header);
        }

        // Version 3 requires each snapshot's extra data: the table is written again first, as
        // QEMU's upgrade writes it.
        if (plan.Version == 3 && header.Version == 2 && header.SnapshotCount > 0)
        {
            header = SnapshotEditor.Rewrite(storage, header);
        }

        (ulong tableOffset, uint tableClusters) = (header.RefcountTableOffset, header.RefcountTableClusters);
        if (plan.RebuildRefcounts)
        {
            (RefcountRebuild.Rebuilt rebuilt, _) = RefcountRepair.Place(storage, header, new RefcountGeometry(header.ClusterBits, plan.RefcountOrder));
            (tableOffset, tableClusters) = (rebuilt.TableOffset, rebuilt.TableClusters);
        }

        Header amended = HeaderModule.amend(header, plan.Version, plan.LazyRefcounts, plan.RefcountOrder, tableOffset, tableClusters);
        byte[] first = HeaderEncode.encode(amended).OrThrow(path);
        storage.Write(0, first);
        storage.Flush();
        logger.LogInformation("{Image}: amended to version {Version}, lazy refcounts {Lazy}, refcount order {Order}", path, plan.Version, plan.LazyRefcounts, plan.RefcountOrder);
    }
}
