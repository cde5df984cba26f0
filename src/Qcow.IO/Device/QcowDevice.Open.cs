// Opening a qcow or qcow2 image: the header, what Qcow supports of it, and the backing file.
using System;
using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.FSharp.Core;
using Qcow.Format;

namespace Qcow.IO;

internal sealed partial class QcowDevice
{
    /// <summary>Opens an image whose first bytes carry the qcow magic.</summary>
    public static QcowDevice Open(IStorage storage, DeviceOptions options, BackingOpener openBacking, DataFileOpener? openDataFile = null)
    {
        byte[] probe = new byte[Limits.HeaderV3Length];
        int available = storage.Read(0, probe);
        uint version = BinaryPrimitives.ReadUInt32BigEndian(probe.AsSpan(HeaderFields.Version));
        return version == 1
            ? OpenV1(storage, probe.AsSpan(0, available), options, openBacking)
            : OpenQcow2(storage, options, openBacking, openDataFile);
    }

    private static QcowDevice OpenQcow2(IStorage storage, DeviceOptions options, BackingOpener openBacking, DataFileOpener? openDataFile)
    {
        Header header = ReadHeader(storage);
        SnapshotTable snapshots = Validate(storage, header, options);
        if (options.Snapshot is { } choice)
        {
            header = AtSnapshot(storage.Path, header, snapshots, choice, options);
        }

        string? dataFileName = OptionModule.ToObj(HeaderModule.externalDataFile(header));
        IStorage? dataFile = dataFileName is null ? null : openDataFile?.Invoke(dataFileName);
        // An empty name is no backing file, as in QEMU.
        string? backingName = OptionModule.ToObj(header.BackingFileName) is { Length: > 0 } name ? name : null;
        string? backingFormat = OptionModule.ToObj(HeaderModule.backingFormat(header));
        IBlockDevice? backing;
        try
        {
            backing = backingName is null ? null : openBacking(backingName, backingFormat);
        }
        catch
        {
            dataFile?.Dispose();
            throw;
        }

        return OwningBacking(backing, dataFile, () =>
        {
            Header ready = options.Writable ? MakeWritable(storage, header, options) : header;
            PersistentBitmaps? bitmaps = options.Writable ? PersistentBitmaps.Load(storage, ready) : null;
            bitmaps?.MarkInUse(storage, ready);
            return new QcowDevice(storage, LayoutOf(storage.Path, ready), ready, null, backingName, backingFormat, backing, options, snapshots)
            {
                DataFile = dataFile,
                DataFileName = dataFileName,
                _bitmaps = bitmaps,
            };
        });
    }

    /// <summary>The header with the chosen snapshot's L1 table and size in place of the active state's; read-only opens only.</summary>
    private static Header AtSnapshot(string path, Header header, SnapshotTable snapshots, SnapshotChoice choice, DeviceOptions options)
    {
        if (options.Writable)
        {
            throw new InvalidOperationException($"{path}: an internal snapshot can only be opened read-only");
        }

        var entries = Microsoft.FSharp.Collections.ListModule.OfSeq(snapshots.Entries);
        FSharpOption<int> found = choice.IdOrName
            ? SnapshotModule.tryFind(choice.Id ?? choice.Name!, entries)
            : SnapshotModule.tryFindBy(OptionModule.OfObj(choice.Id), OptionModule.OfObj(choice.Name), entries);
        if (found is null)
        {
            throw new System.Collections.Generic.KeyNotFoundException("Failed to load snapshot: Can't find snapshot");
        }

        Snapshot snapshot = snapshots.Entries[found.Value];
        return HeaderModule.atSnapshot(header, snapshot.L1TableOffset, snapshot.L1Size);
    }

    private static ImageLayout LayoutOf(string path, Header header) =>
        new ImageLayout(
            path,
            header.Version,
            HeaderModule.geometry(header),
            HeaderModule.entryFormat(header),
            HeaderModule.refcountGeometry(header),
            header.Size,
            header.L1TableOffset,
            (int)header.L1Size,
            header.RefcountTableOffset,
            header.RefcountTableClusters,
            header.CompressionType);

    /// <summary>Makes the device; if that fails, the files opened for it are closed again (their locks with them).</summary>
    private static QcowDevice OwningBacking(IBlockDevice? backing, IStorage? dataFile, Func<QcowDevice> create)
    {
        try
        {
            return create();
        }
        catch
        {
            backing?.Dispose();
            dataFile?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The header of a closed qcow2 image about to be rewritten (amend, resize, snapshots,
    /// rebase): validated as a read-write open validates it, then made writable.
    /// </summary>
    public static Header PrepareForWriting(IStorage storage, DeviceOptions options)
    {
        Header header = ReadHeader(storage);
        Validate(storage, header, options);
        return MakeWritable(storage, header, options);
    }

    /// <summary>
    /// Everything an open can be refused for that lies in the image itself, checked before
    /// anything is written to it: what Qcow cannot handle, the snapshot table (with QEMU's limits,
    /// so a hostile table is refused before any rebuild work), and, for writing, tables that end
    /// past the end of the file (a dirty image's refcount table is rebuilt, not written to). The backing and data files are opened after this and also before
    /// the first write.
    /// </summary>
    private static SnapshotTable Validate(IStorage storage, Header header, DeviceOptions options)
    {
        RefuseUnsupported(storage.Path, header, options);
        SnapshotTable snapshots = SnapshotTable.Read(storage, header);
        if (options.Writable)
        {
            ImageMetadata.RefuseTruncatedForWriting(storage, header.L1TableOffset, (int)header.L1Size, Structure.L1Table);
            if (!HeaderModule.isDirty(header))
            {
                ImageMetadata.RefuseTruncatedForWriting(storage, header.RefcountTableOffset, (int)Qcow.Format.Refcount.tableEntriesIn(HeaderModule.refcountGeometry(header), header.RefcountTableClusters), Structure.RefcountTable);
            }
        }

        return snapshots;
    }

    /// <summary>
    /// The first writes of a read-write open, once everything is validated: autoclear bits Qcow
    /// does not know are cleared (qcow2.rst), stale refcounts of a dirty image rebuilt (the
    /// persistent bitmaps' clusters counted).
    /// </summary>
    private static Header MakeWritable(IStorage storage, Header header, DeviceOptions options)
    {
        // The bitmaps bit stays only with the extension it validates.
        bool hasBitmaps = System.Linq.Enumerable.Any(header.Extensions, e => e.IsBitmaps);
        ulong known = HeaderModule.RawExternalDataBit | (hasBitmaps ? HeaderModule.BitmapsBit : 0);
        if ((header.AutoclearFeatures & ~known) != 0)
        {
            storage.Write(HeaderEncode.AutoclearFieldOffset, HeaderEncode.featureField(header.AutoclearFeatures & known));
            storage.Flush();
            header = ReadHeader(storage);
        }

        if (HeaderModule.isDirty(header))
        {
            RefcountRepair.RepairDirty(storage, header, options.Logger);
            header = ReadHeader(storage);
        }

        return header;
    }

    /// <summary>
    /// The image without its persistent bitmaps (for a change they cannot survive as they are):
    /// one header write drops the extension with the autoclear bits, then their clusters are freed.
    /// </summary>
    public static Header DropBitmaps(IStorage storage, Header header)
    {
        int bitmaps = BitmapDirectory.Read(storage, header).Bitmaps.Count;
        storage.Write(0, HeaderEncode.encode(HeaderModule.withoutBitmaps(header)).OrThrow(storage.Path));
        storage.Flush();
        header = ReadHeader(storage);
        if (bitmaps > 0 && !HeaderModule.isDirty(header))
        {
            RefcountRepair.FreeLeaks(storage, header);
        }

        return header;
    }

    private static void RefuseUnsupported(string path, Header header, DeviceOptions options)
    {
        if (options.Writable && (header.IncompatibleFeatures & HeaderModule.ExtendedL2Bit) != 0)
        {
            throw FormatErrors.Unsupported(path, "writing to an image with extended L2 entries (subclusters)");
        }

        if (options.Writable && (header.IncompatibleFeatures & HeaderModule.ExternalDataBit) != 0)
        {
            throw FormatErrors.Unsupported(path, "writing to an image with an external data file");
        }

        if (options.Writable && header.CryptMethod != 0)
        {
            throw FormatErrors.Unsupported(path, header.CryptMethod == 1 ? "writing an AES-encrypted image" : "writing a LUKS-encrypted image");
        }

        if (options.Writable && HeaderModule.isCorrupt(header) && !options.ForceCorrupt)
        {
            throw FormatErrors.ToException(FormatError.NewMarkedCorrupt(false), path);
        }
    }

    private static QcowDevice OpenV1(IStorage storage, ReadOnlySpan<byte> probe, DeviceOptions options, BackingOpener openBacking)
    {
        if (options.Snapshot is not null)
        {
            throw new NotSupportedException("Failed to load snapshot: Operation not supported");
        }

        QcowV1Header header = QcowV1HeaderModule.decode(probe).OrThrow(storage.Path);
        if (options.Writable && header.CryptMethod != 0)
        {
            throw FormatErrors.Unsupported(storage.Path, "writing an AES-encrypted image");
        }

        string? backingName = null;
        if (header.BackingFileOffset != 0)
        {
            byte[] name = new byte[header.BackingFileSize];
            if (storage.Read((long)header.BackingFileOffset, name) != name.Length)
            {
                throw FormatErrors.ToException(FormatError.NewTruncated(Structure.BackingFileName, header.BackingFileOffset, header.BackingFileSize), storage.Path);
            }

            backingName = HeaderDecode.text(name, 0, name.Length);
        }

        var layout = new ImageLayout(
            storage.Path,
            1,
            QcowV1HeaderModule.geometry(header),
            QcowV1HeaderModule.entryFormat(header),
            new RefcountGeometry(header.ClusterBits, 4),
            header.Size,
            header.L1TableOffset,
            (int)QcowV1HeaderModule.l1Size(header),
            0,
            0,
            0);
        // An empty name is no backing file, as in QEMU.
        IBlockDevice? backing = string.IsNullOrEmpty(backingName) ? null : openBacking(backingName, null);
        return OwningBacking(backing, null, () => new QcowDevice(storage, layout, null, header, backingName, null, backing, options, null));
    }
}
