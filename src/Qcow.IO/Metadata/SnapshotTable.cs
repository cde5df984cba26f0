// The internal snapshot table as it is on disk: its entries and how many bytes it spans.
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

internal sealed record SnapshotTable(IReadOnlyList<Snapshot> Entries, ulong Bytes)
{
    /// <summary>Reads and checks every entry the header announces, within QEMU's 64 MiB limit.</summary>
    public static SnapshotTable Read(IStorage storage, Header header)
    {
        ulong at = header.SnapshotsOffset;
        ulong tableBytes = 0;
        var entries = new List<Snapshot>();
        byte[] fixedPart = new byte[SnapshotModule.FixedBytes];
        for (uint i = 0; i < header.SnapshotCount; i++)
        {
            ulong entryAt = at + tableBytes;
            if (storage.Read((long)entryAt, fixedPart) != fixedPart.Length)
            {
                throw FormatErrors.ToException(FormatError.NewTruncated(Structure.SnapshotTable, entryAt, (ulong)fixedPart.Length), storage.Path);
            }

            ulong bytes = SnapshotModule.entryBytes(fixedPart, entryAt).OrThrow(storage.Path);
            SnapshotModule.withinTableLimit(tableBytes + bytes, entryAt).OrThrow(storage.Path);

            byte[] entry = new byte[bytes];
            storage.Read((long)entryAt, entry);
            entries.Add(SnapshotModule.decode(header.ClusterBits, entry, entryAt).OrThrow(storage.Path));
            tableBytes += bytes;
        }

        return new SnapshotTable(entries, tableBytes);
    }
}
