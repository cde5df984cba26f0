// A qcow (v1) or qcow2 (v2/v3) image as a virtual disk. This file holds its state; opening,
// reading and writing live in QcowDevice.Open.cs, QcowDevice.Read.cs and QcowDevice.Write.cs.
using System;
using System.Linq;
using Microsoft.Extensions.Logging;
using Microsoft.FSharp.Core;
using Qcow.Format;

namespace Qcow.IO;

internal sealed partial class QcowDevice : IBlockDevice
{
    private readonly object _sync = new();

    // Data reads and in-place asynchronous writes running outside _sync (QcowDevice.Read.cs,
    // WriteAsync); a cluster is not made free for reuse, nor the file closed, while any runs.
    private readonly IoInFlight _ioInFlight = new();
    private readonly IStorage _storage;
    private readonly DeviceOptions _options;
    private readonly SnapshotTable? _snapshotTable;

    // Made from the header at open, and again after a repair rewrites it (under _sync).
    private ImageMetadata _metadata;
    private PlanExecutor _executor;
    private readonly ClusterCodec _codec;
    private readonly ILogger _logger;
    private readonly byte[] _inflated;
    private ulong _inflatedHost = ulong.MaxValue;
    private bool? _metadataPreallocated;

    // Where the next compressed stream may be packed, after the last one (QEMU's free_byte_offset); 0: a new cluster.
    private ulong _packAt;

    // Room for one compressed cluster, reused by every compressed write (under _sync).
    private byte[]? _compressed;
    private bool _disposed;

    private QcowDevice(IStorage storage, ImageLayout layout, Header? header, QcowV1Header? v1Header, string? backingName, string? backingFormat, IBlockDevice? backing, DeviceOptions options, SnapshotTable? snapshots)
    {
        Snapshots = snapshots?.Entries ?? [];
        _storage = storage;
        Layout = layout;
        Header = header;
        V1Header = v1Header;
        BackingFileName = backingName;
        BackingFormat = backingFormat;
        Backing = backing;
        _logger = options.Logger;
        _options = options;
        _snapshotTable = snapshots;
        _codec = new ClusterCodec(storage, layout.CompressionType, layout.ClusterSize);
        (_metadata, _executor) = MetadataFor(layout, header);
        _inflated = new byte[layout.ClusterSize];
    }

    public ImageLayout Layout { get; private set; }

    /// <summary>The qcow2 header; null for qcow v1.</summary>
    public Header? Header { get; private set; }

    /// <summary>The qcow v1 header; null for qcow2.</summary>
    public QcowV1Header? V1Header { get; }

    public string? BackingFileName { get; }

    public string? BackingFormat { get; }

    /// <summary>The backing file, opened; null when there is none or it was left unopened.</summary>
    public IBlockDevice? Backing { get; }

    /// <summary>The external data file that holds the guest data, when the image names one and it was opened.</summary>
    public IStorage? DataFile { get; private init; }

    /// <summary>The external data file's name as the image stores it; null when there is none.</summary>
    public string? DataFileName { get; private init; }

    /// <summary>The guest data is encrypted (AES or LUKS): it can be described, not read.</summary>
    public bool IsEncrypted => (Header?.CryptMethod ?? V1Header!.CryptMethod) != 0;

    /// <summary>The LUKS header of a LUKS-encrypted qcow2 image; null otherwise.</summary>
    public LuksHeader? ReadLuksHeader()
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            if (Header is not { CryptMethod: 2 } h || h.Extensions.OfType<HeaderExtension.FullDiskEncryption>().FirstOrDefault() is not { } crypt)
            {
                return null;
            }

            byte[] bytes = new byte[Luks.HeaderBytes];
            int read = crypt.headerOffset < (ulong)_storage.Length ? _storage.Read((long)crypt.headerOffset, bytes) : 0;
            return Luks.decode(crypt.headerOffset, bytes.AsSpan(0, read).ToArray()).OrThrow(Path);
        }
    }

    /// <summary>Reads need the key, which Qcow does not take yet.</summary>
    private void ThrowIfEncrypted()
    {
        if (IsEncrypted)
        {
            throw FormatErrors.Unsupported(Path, "reading encrypted guest data");
        }
    }

    /// <summary>Where data clusters lie: the external data file, or the image itself.</summary>
    private IStorage DataStorage => DataFileName is null
        ? _storage
        : DataFile ?? throw FormatErrors.Unsupported(Path, "reading guest data without opening the external data file");

    /// <summary>The internal snapshots, as the snapshot table held them at open.</summary>
    public System.Collections.Generic.IReadOnlyList<Snapshot> Snapshots { get; }

    public string Path => _storage.Path;

    public long AllocatedFileBytes => _storage.AllocatedBytes;

    public string FormatName => Layout.Version == 1 ? "qcow" : "qcow2";

    /// <summary>QEMU counts whole sectors: a size that is not a multiple of 512 is rounded down.</summary>
    public long Length => (long)(Layout.VirtualSize & ~511UL);

    public bool CanWrite => _storage.CanWrite;

    public ImageMetadata Metadata => _metadata;

    public void Flush()
    {
        lock (_sync)
        {
            ThrowIfMarkedCorrupt();
            if (_storage.CanWrite)
            {
                FlushMetadata();
            }
        }
    }

    /// <summary>
    /// A flush applies releases: the cluster the next compressed stream would be packed into may
    /// be freed by one and handed out as a data cluster later, so packing starts afresh. Reads in
    /// flight finish first: one may still be reading a cluster that is about to become free.
    /// </summary>
    /// <param name="accurate">Write refcount blocks even under lazy refcounts, for check and repair, which read them from the file.</param>
    private void FlushMetadata(bool accurate = false)
    {
        if (_metadata.PendingReleases > 0)
        {
            _ioInFlight.WaitForNone();
        }

        if (accurate)
        {
            _metadata.FlushAccurately();
        }
        else
        {
            _metadata.Flush();
        }

        _packAt = 0;
    }


    public void Dispose()
    {
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _ioInFlight.WaitForNone();
            try
            {
                // After a refused write the metadata in memory may be half-changed: like QEMU,
                // Qcow then writes nothing more to the image.
                if (_storage.CanWrite && !_metadata.IsCorrupt)
                {
                    // A failed store leaves the bitmaps marked in use, so no one trusts them; what
                    // the guest wrote is made durable all the same, and the error then reported.
                    try
                    {
                        StoreBitmaps();
                    }
                    finally
                    {
                        _metadata.Close();
                    }
                }
            }
            finally
            {
                _storage.Dispose();
                DataFile?.Dispose();
                Backing?.Dispose();
            }
        }
    }

    /// <summary>Flushes, then checks the image as it is on disk (qcow2 only).</summary>
    public CheckReport Check()
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            if (Layout.Version == 1)
            {
                throw new NotSupportedException($"{Path}: qcow (version 1) images have no refcounts to check");
            }

            if (_storage.CanWrite && !_metadata.IsCorrupt)
            {
                FlushMetadata(accurate: true);
            }

            return ImageChecker.Check(_storage, ReadHeader(_storage));
        }
    }

    /// <summary>
    /// Repairs the image in place, as one pass of qemu-img check -r, with the file held (and the
    /// lock taken) throughout: what is cached is flushed, the file repaired, and the tables read
    /// afresh from the repaired header, so that other threads keep using this same device.
    /// </summary>
    public CheckReport Repair(RefcountCheck.Repair repair)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            if (Layout.Version == 1)
            {
                throw new NotSupportedException($"{Path}: qcow (version 1) images have no refcounts to check");
            }

            if (!_storage.CanWrite)
            {
                throw new InvalidOperationException($"{Path} is open read-only; open it read-write to repair it");
            }

            // After a refused write the tables in memory may be half-changed: they are dropped,
            // not flushed, as a close would drop them.
            if (!_metadata.IsCorrupt)
            {
                FlushMetadata(accurate: true);
            }

            _ioInFlight.WaitForNone();
            CheckReport report = ImageChecker.Repair(_storage, ReadHeader(_storage), repair);
            Header = ReadHeader(_storage);
            Layout = LayoutOf(Path, Header);
            (_metadata, _executor) = MetadataFor(Layout, Header);
            _inflatedHost = ulong.MaxValue;
            _metadataPreallocated = null;
            _packAt = 0;
            return report;
        }
    }

    /// <summary>The tables' cache and the plan executor for an image laid out as the header says.</summary>
    private (ImageMetadata, PlanExecutor) MetadataFor(ImageLayout layout, Header? header)
    {
        bool lazy = header is not null && HeaderModule.hasLazyRefcounts(header) && _storage.CanWrite;
        var metadata = new ImageMetadata(_storage, layout, _logger, _options.CacheBytes, _snapshotTable is null ? null : (_snapshotTable, header!.SnapshotsOffset), _options.PassDiscards, lazy);
        metadata.FileEnd = (ulong)_storage.Length;
        return (metadata, new PlanExecutor(_storage, metadata, _codec, Backing, layout.ClusterSize));
    }

    /// <summary>The persistent bitmaps' directory as it is on disk now (while open read-write, as at open, marked in use).</summary>
    public BitmapDirectory ReadBitmaps()
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            return Header is null ? BitmapDirectory.None : BitmapDirectory.Read(_storage, ReadHeader(_storage));
        }
    }

    /// <summary>The header as it is on disk now (growth and repair change it after open).</summary>
    public static Header ReadHeader(IStorage storage)
    {
        byte[] probe = new byte[Limits.HeaderV3Length];
        storage.Read(0, probe);
        uint bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(probe.AsSpan(HeaderFields.ClusterBits));
        byte[] first = new byte[bits >= Limits.MinClusterBits && bits <= Limits.MaxClusterBits ? 1 << (int)bits : probe.Length];
        int available = storage.Read(0, first);
        return HeaderDecode.decode(first, available).OrThrow(storage.Path);
    }

    /// <summary>The image carries the corrupt bit, or a refused write set it during this open.</summary>
    public bool IsMarkedCorrupt => (Header is { } h && HeaderModule.isCorrupt(h)) || _metadata.IsCorrupt;

    /// <summary>The L2 entry mapping a guest offset, 0 when no table maps it.</summary>
    private ulong EntryFor(long offset, out int l1Index, out ulong table)
    {
        l1Index = GeometryModule.l1Index(Layout.Geometry, (ulong)offset);
        table = l1Index < Layout.L1Size ? _metadata.L2TableOffset(l1Index) : 0;
        if (table == 0)
        {
            return 0;
        }

        int l2Index = GeometryModule.l2Index(Layout.Geometry, (ulong)offset);
        return _metadata.L2Entry(table, l2Index, l1Index);
    }

    /// <summary>
    /// The mapping of the guest bytes at offset, and how many bytes it covers from there: to the
    /// end of the cluster, or of the subcluster in an image with extended L2 entries.
    /// </summary>
    private L2Mapping MappingAt(long offset, out int run)
    {
        ulong entry = EntryFor(offset, out int l1Index, out ulong table);
        int inCluster = (int)(offset & (Layout.ClusterSize - 1));
        if (!Layout.ExtendedL2)
        {
            run = Layout.ClusterSize - inCluster;
            return Classify(entry, offset);
        }

        int sub = Layout.SubclusterSize;
        run = sub - (inCluster % sub);
        int l2Index = GeometryModule.l2Index(Layout.Geometry, (ulong)offset);
        ulong bitmap = table == 0 ? 0 : _metadata.L2Bitmap(table, l2Index, l1Index);
        var mapping = L2Entry.subclusterMapping(Layout.EntryFormat, entry, bitmap, inCluster / sub);
        if (mapping.IsError)
        {
            throw FormatErrors.ToException(L2Entry.invalid(table + (ulong)(l2Index * Layout.Geometry.L2EntryBytes), (ulong)offset, entry, FSharpValueOption<ulong>.NewValueSome(bitmap), mapping.ErrorValue), Path);
        }

        return mapping.ResultValue;
    }

    private L2Mapping Classify(ulong entry, long guestOffset)
    {
        var mapping = L2Entry.classify(Layout.EntryFormat, entry);
        if (mapping.IsError)
        {
            EntryFor(guestOffset, out _, out ulong table);
            ulong entryAt = table + (ulong)(GeometryModule.l2Index(Layout.Geometry, (ulong)guestOffset) * Layout.Geometry.L2EntryBytes);
            throw FormatErrors.ToException(L2Entry.invalid(entryAt, (ulong)guestOffset, entry, FSharpValueOption<ulong>.ValueNone, mapping.ErrorValue), Path);
        }

        return mapping.ResultValue;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private void ThrowIfMarkedCorrupt()
    {
        if (_metadata.IsCorrupt)
        {
            throw FormatErrors.ToException(FormatError.NewMarkedCorrupt(true), Path);
        }
    }
}
