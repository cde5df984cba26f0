// Internal snapshots of a qcow2 image no one has open (the caller holds its storage), as
// qemu-img snapshot makes, applies and deletes them: each change is one new metadata generation (MetadataGeneration), so a crash at any point
// leaves the image as it was before the change or after it.
using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Logging;
using Microsoft.FSharp.Collections;
using Qcow.Format;

namespace Qcow.IO;

internal static class SnapshotEditor
{
    /// <summary>Takes a snapshot of the active state named <paramref name="name"/>, dated <paramref name="date"/>; returns its entry.</summary>
    /// <exception cref="InvalidOperationException">The image already holds QEMU's maximum number of snapshots.</exception>
    public static Snapshot Create(IStorage storage, string name, DateTimeOffset date, ILogger logger)
    {
        (Header header, IReadOnlyList<Snapshot> snapshots) = Prepare(storage, logger);
        if (snapshots.Count >= SnapshotModule.MaxCount)
        {
            throw new InvalidOperationException("Too many snapshots");
        }

        // QEMU dates a snapshot by gettimeofday: whole microseconds.
        long micros = (date.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10 % 1_000_000;
        Snapshot created = SnapshotModule.create(
            SnapshotModule.nextId(ListModule.OfSeq(snapshots)), name, (uint)date.ToUnixTimeSeconds(), (uint)(micros * 1000), 0, header.L1Size, header.Size);
        var target = new MetadataGeneration.Target(
            ReadL1(storage, header.L1TableOffset, header.L1Size),
            header.L1Size,
            header.Size,
            [.. snapshots.Select(s => new MetadataGeneration.SnapshotTarget(s, false)), new MetadataGeneration.SnapshotTarget(created, true)]);
        (_, IReadOnlyList<Snapshot> written) = MetadataGeneration.Switch(storage, header, target);
        logger.LogInformation("{Image}: snapshot {Id} ({Name}) created", storage.Path, created.Id, name);
        return written[^1];
    }

    /// <summary>Makes the snapshot with this ID or name (ID first, as QEMU looks) the active state, its virtual size with it.</summary>
    /// <exception cref="KeyNotFoundException">No snapshot has that ID or name.</exception>
    /// <exception cref="InvalidOperationException">The image has persistent bitmaps, which QEMU too refuses to carry into another state.</exception>
    public static void Apply(IStorage storage, string idOrName, ILogger logger)
    {
        (Header header, IReadOnlyList<Snapshot> snapshots) = Prepare(storage, logger);
        Snapshot snapshot = snapshots[Find(snapshots, idOrName)];

        // As QEMU: the bitmaps would describe writes the snapshot's state never saw.
        if (BitmapDirectory.Read(storage, header).Bitmaps.Count > 0)
        {
            throw new InvalidOperationException("Device has active dirty bitmaps");
        }

        ulong size = Microsoft.FSharp.Core.OptionModule.DefaultValue(header.Size, SnapshotModule.diskSize(snapshot));

        uint needed = (uint)GeometryModule.l1EntriesFor(HeaderModule.geometry(header), size);
        uint l1Size = size == header.Size ? Math.Max(header.L1Size, snapshot.L1Size) : Math.Max(needed, snapshot.L1Size);
        var target = new MetadataGeneration.Target(
            ReadL1(storage, snapshot.L1TableOffset, snapshot.L1Size),
            l1Size,
            size,
            [.. snapshots.Select(s => new MetadataGeneration.SnapshotTarget(s, false))]);
        MetadataGeneration.Switch(storage, header, target);
        logger.LogInformation("{Image}: snapshot {Id} ({Name}) applied", storage.Path, snapshot.Id, snapshot.Name);
    }

    /// <summary>Deletes the snapshot with this ID or name; what only it referenced becomes free.</summary>
    /// <exception cref="KeyNotFoundException">No snapshot has that ID or name.</exception>
    public static void Delete(IStorage storage, string idOrName, ILogger logger)
    {
        (Header header, IReadOnlyList<Snapshot> snapshots) = Prepare(storage, logger);
        int index = Find(snapshots, idOrName);
        var target = new MetadataGeneration.Target(
            ReadL1(storage, header.L1TableOffset, header.L1Size),
            header.L1Size,
            header.Size,
            [.. snapshots.Where((_, i) => i != index).Select(s => new MetadataGeneration.SnapshotTarget(s, false))]);
        MetadataGeneration.Switch(storage, header, target);
        logger.LogInformation("{Image}: snapshot {Id} ({Name}) deleted", storage.Path, snapshots[index].Id, snapshots[index].Name);
    }

    /// <summary>
    /// Writes the snapshot table again as QEMU writes it (every entry with the extra data version
    /// 3 requires), the rest of the image as it is: a compat upgrade's first step. Returns the header.
    /// </summary>
    public static Header Rewrite(IStorage storage, Header header)
    {
        IReadOnlyList<Snapshot> snapshots = SnapshotTable.Read(storage, header).Entries;
        var target = new MetadataGeneration.Target(
            ReadL1(storage, header.L1TableOffset, header.L1Size),
            header.L1Size,
            header.Size,
            [.. snapshots.Select(s => new MetadataGeneration.SnapshotTarget(s, false))]);
        return MetadataGeneration.Switch(storage, header, target).Header;
    }

    /// <summary>
    /// The image made ready for writing (a dirty one repaired) and its snapshots. Persistent
    /// bitmaps stay as they are: the new generation keeps their clusters, and taking or deleting
    /// a snapshot leaves what they describe valid, as QEMU leaves it.
    /// </summary>
    private static (Header Header, IReadOnlyList<Snapshot> Snapshots) Prepare(IStorage storage, ILogger logger)
    {
        Header header = QcowDevice.PrepareForWriting(storage, new DeviceOptions(true, false, 0, logger));
        return (header, SnapshotTable.Read(storage, header).Entries);
    }

    private static int Find(IReadOnlyList<Snapshot> snapshots, string idOrName) =>
        SnapshotModule.tryFind(idOrName, ListModule.OfSeq(snapshots)) is { } found
            ? found.Value
            : throw new KeyNotFoundException($"Can't find the snapshot '{idOrName}'");

    private static ulong[] ReadL1(IStorage storage, ulong offset, uint entries)
    {
        // What lies past the end of the file reads as zero entries, as QEMU reads it.
        byte[] bytes = new byte[entries * 8];
        storage.Read((long)offset, bytes);
        return TableEntries.Decode(bytes);
    }
}
