// What the image says about guest bytes without reading them: block status as QEMU reports it
// (through the backing chain, refined by file holes when clusters were preallocated), and the
// table entries behind an offset, for explaining it.
using System;
using Qcow.Format;

namespace Qcow.IO;

internal sealed partial class QcowDevice
{
    /// <summary>The file data clusters lie in, as QEMU names it: the external data file, or the image.</summary>
    private string DataPath => DataFile?.Path ?? Path;

    /// <summary>
    /// Block status of a run of clusters that one L2 table maps alike (or of a whole L1 entry's
    /// range when it has no L2 table), as QEMU's qcow2 driver reports it; unallocated bytes are
    /// asked of the backing file.
    /// </summary>
    public BlockStatus Status(long offset, long maxLength)
    {
        BlockStatus status;
        lock (_sync)
        {
            ThrowIfDisposed();
            ThrowIfEncrypted();
            ulong entry = EntryFor(offset, out _, out ulong table);
            long span = 1L << Layout.L1Shift;
            L2Mapping mapping = L2Mapping.Unallocated;
            long length = Math.Min(maxLength, span - (offset & (span - 1)));
            if (table != 0)
            {
                mapping = MappingAt(offset, out int run);
                length = Math.Min(maxLength, Layout.ExtendedL2 ? run : RunOfAlike(offset, run, Math.Min(maxLength, span - (offset & (span - 1))), mapping));
            }

            long inCluster = offset & (Layout.ClusterSize - 1);
            status = mapping.Tag switch
            {
                L2Mapping.Tags.Normal => new BlockStatus(length, true, false, true, (long)mapping.Host + inCluster, 0, DataPath),
                L2Mapping.Tags.ZeroAllocated => new BlockStatus(length, true, true, false, (long)mapping.ZeroHost + inCluster, 0, DataPath),
                L2Mapping.Tags.ZeroPlain => new BlockStatus(length, true, true, false, -1, 0, null),
                L2Mapping.Tags.Compressed => new BlockStatus(length, true, false, true, -1, 0, null),
                // An unallocated subcluster of an allocated cluster still names where it would lie (QEMU's UNALLOCATED_ALLOC).
                _ when Layout.ExtendedL2 && (entry & L2Entry.OffsetMask) != 0 && (entry & L2Entry.CompressedFlag) == 0
                    => new BlockStatus(length, false, true, false, (long)(entry & L2Entry.OffsetMask) + inCluster, 0, DataPath),
                _ => new BlockStatus(length, false, true, false, -1, 0, null),
            };
        }

        // Unallocated: the backing file answers, except past its end, where the image reads zeros.
        if (!status.Present && Backing != null && offset < Backing.Length)
        {
            return Backing.Status(offset, Math.Min(status.Length, Backing.Length - offset)).Deeper();
        }

        lock (_sync)
        {
            return status.Data && status.HasOffset && Layout.HasRefcounts && DataFileName is null && _storage is FileStorage file && IsMetadataPreallocated(file)
                ? WithHoles(status, file)
                : status;
        }
    }

    /// <summary>
    /// How far from <paramref name="offset"/> (whose cluster maps as <paramref name="first"/>,
    /// <paramref name="run"/> bytes of it from there) the next clusters of the same L2 table map
    /// alike: unallocated or zero as it is, or data (or preallocated zeros) at the next host
    /// cluster; at most <paramref name="limit"/> bytes. Compressed clusters stand alone.
    /// </summary>
    private long RunOfAlike(long offset, int run, long limit, L2Mapping first)
    {
        long cs = Layout.ClusterSize;
        long length = run;
        while (length < limit && !first.IsCompressed && offset + length < Length)
        {
            long next = offset + length;
            // An entry that does not decode ends the run; a query at its own offset reports it.
            var decoded = L2Entry.classify(Layout.EntryFormat, EntryFor(next, out _, out _));
            if (decoded.IsError)
            {
                break;
            }

            L2Mapping m = decoded.ResultValue;
            ulong delta = (ulong)(next - offset + (offset & (cs - 1)));
            bool alike = m.Tag == first.Tag && m.Tag switch
            {
                L2Mapping.Tags.Normal => m.Host == first.Host + delta,
                L2Mapping.Tags.ZeroAllocated => m.ZeroHost == first.ZeroHost + delta,
                _ => true,
            };
            if (!alike)
            {
                break;
            }

            length += cs;
        }

        return Math.Min(length, limit);
    }

    /// <summary>
    /// QEMU's qcow2_detect_metadata_preallocation: far more clusters in use than the file system
    /// has allocated means clusters were preallocated without data, so data clusters are asked
    /// of the file too, and its holes read as zeros. Decided once per open, as QEMU decides it.
    /// </summary>
    private bool IsMetadataPreallocated(FileStorage file)
    {
        if (_metadataPreallocated is { } known)
        {
            return known;
        }

        long realClusters = file.AllocatedBytes >> Layout.Geometry.ClusterBits;
        long threshold = Math.Max(realClusters * 10 / 9, realClusters + 2);
        long endCluster = (file.Length + Layout.ClusterSize - 1) >> Layout.Geometry.ClusterBits;
        var stored = new StoredRefcounts(_storage, ReadHeader(_storage));
        long inUse = 0;
        for (long c = 0; c < endCluster && inUse < threshold; c++)
        {
            inUse += stored.Get((ulong)c) is > 0 ? 1 : 0;
        }

        _metadataPreallocated = inUse >= threshold;
        return inUse >= threshold;
    }

    /// <summary>A data run refined by the file's holes: bytes in a hole, or past the end of the file, read as zeros.</summary>
    private static BlockStatus WithHoles(BlockStatus status, FileStorage file)
    {
        long fileLength = file.Length;
        if (status.HostOffset >= fileLength)
        {
            return status with { Zero = true };
        }

        (bool data, long length) = file.Allocation(status.HostOffset, Math.Min(status.Length, fileLength - status.HostOffset));
        return !data && status.HostOffset + length >= fileLength
            ? status with { Zero = true }
            : status with { Length = length, Zero = !data };
    }

    /// <summary>The table entries that map a guest offset, and where they lie, for explaining it.</summary>
    public EntryTrace Trace(long offset)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            ulong entry = EntryFor(offset, out int l1Index, out ulong table);
            int l2Index = GeometryModule.l2Index(Layout.Geometry, (ulong)offset);
            return new EntryTrace(
                l1Index,
                (long)Layout.L1Offset + l1Index * 8L,
                _metadata.L1Entry(l1Index),
                table,
                l2Index,
                table == 0 ? -1 : (long)table + ((long)l2Index * Layout.Geometry.L2EntryBytes),
                entry,
                table != 0 && Layout.ExtendedL2 ? _metadata.L2Bitmap(table, l2Index, l1Index) : 0);
        }
    }
}
