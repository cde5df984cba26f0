// Changing a closed qcow2 image's format options in place, as qemu-img amend does: compat level,
// lazy refcounts, refcount width. New refcount structures are made durable first; then one write
// of the header cluster switches to everything at once.
using System;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

/// <param name="Version">2 (compat=0.10) or 3 (compat=1.1); null keeps it.</param>
/// <param name="LazyRefcounts">null keeps it.</param>
/// <param name="RefcountOrder">log2 of the refcount width; null keeps it.</param>
internal sealed record AmendOptions(int? Version, bool? LazyRefcounts, int? RefcountOrder);

internal static class ImageAmender
{
    /// <exception cref="InvalidOperationException">The change is one QEMU refuses, or one Qcow cannot make yet; the message says which.</exception>
    public static void Amend(string path, AmendOptions o, ILogger logger)
    {
        using FileStorage storage = FileStorage.Open(path, writable: true);
        Header header = QcowDevice.PrepareForWriting(storage, new DeviceOptions(true, false, 0, logger));

        int version = o.Version ?? header.Version;
        bool lazy = o.LazyRefcounts ?? HeaderModule.hasLazyRefcounts(header);
        int order = o.RefcountOrder ?? header.RefcountOrder;
        if (version < 3 && lazy)
        {
            throw new InvalidOperationException(o.LazyRefcounts == true
                ? "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)"
                : "Cannot downgrade an image with lazy refcounts: amend with lazy_refcounts=off first");
        }

        if (version < 3 && order != 4)
        {
            throw new InvalidOperationException("Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)");
        }

        if (version < header.Version)
        {
            RefuseDowngrade(storage, header);
        }

        (ulong tableOffset, uint tableClusters) = (header.RefcountTableOffset, header.RefcountTableClusters);
        if (order != header.RefcountOrder)
        {
            (RefcountRebuild.Rebuilt rebuilt, _) = RefcountRepair.Place(storage, header, new RefcountGeometry(header.ClusterBits, order));
            (tableOffset, tableClusters) = (rebuilt.TableOffset, rebuilt.TableClusters);
        }

        Header amended = HeaderModule.amend(header, version, lazy, order, tableOffset, tableClusters);
        byte[] first = HeaderEncode.encode(amended).OrThrow(path);
        storage.Write(0, first);
        storage.Flush();
        logger.LogInformation("{Image}: amended to version {Version}, lazy refcounts {Lazy}, refcount order {Order}", path, version, lazy, order);
    }

    /// <summary>What version 2 cannot hold: zero clusters, feature bits, another compression than zlib.</summary>
    private static void RefuseDowngrade(IStorage storage, Header header)
    {
        if (header.IncompatibleFeatures != 0 || header.CompressionType != 0)
        {
            throw new InvalidOperationException("Cannot downgrade an image that uses version 3 features (external data, compression type, extended L2)");
        }

        if (header.AutoclearFeatures != 0)
        {
            throw new InvalidOperationException("Cannot downgrade an image with persistent bitmaps");
        }

        ClusterRoles roles = ClusterRoles.Of(storage, header);
        if (roles.HasZeroClusters)
        {
            throw new InvalidOperationException("Cannot downgrade an image with zero clusters: expanding them is not supported by qcow yet");
        }
    }
}
