// Persistent dirty bitmaps of an image open read-write: qemu-img bitmap's operations, and the
// store at close, in QEMU's order (qcow2_store_persistent_dirty_bitmaps): each bitmap's data
// clusters and table go into newly allocated clusters, then a new directory; the refcounts of
// all of them are made durable; the header then names the new directory (its entries without
// the in-use flags), the switch made safe against a torn write by the autoclear bit
// (PersistentBitmaps.SwitchDirectory); only then are the old directory and tables released. A
// crash before the switch leaves the old bitmaps (marked in use) and leaked clusters; after it, the new ones.
using System;
using System.Collections.Generic;
using Microsoft.FSharp.Collections;
using Qcow.Format;

namespace Qcow.IO;

internal sealed partial class QcowDevice
{
    // Loaded at a read-write open of a qcow2 image (empty when it has none); null otherwise.
    private PersistentBitmaps? _bitmaps;

    /// <summary>
    /// Reads the bitmaps under the device's lock, so that no write changes them meanwhile: as
    /// this open keeps them, or, open read-only, as the image holds them (read afresh).
    /// </summary>
    /// <exception cref="InvalidOperationException">A qcow v1 image, which has no bitmaps.</exception>
    public T ReadBitmaps<T>(Func<IReadOnlyList<DirtyBitmap>, T> read)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            IReadOnlyList<DirtyBitmap> all = _bitmaps?.All
                ?? (Header is null ? throw new InvalidOperationException($"{Path}: only qcow2 images have persistent bitmaps") : PersistentBitmaps.Load(_storage, ReadHeader(_storage)).All);
            return read(all);
        }
    }

    /// <summary>Runs one of qemu-img bitmap's operations on the bitmaps this open keeps; they are stored at close.</summary>
    public void ChangeBitmaps(Action<PersistentBitmaps> change)
    {
        lock (_sync)
        {
            ThrowUnlessWritable();
            if (Layout.Version < 3)
            {
                throw new NotSupportedException(Layout.Version == 2 ? "Cannot store dirty bitmaps in qcow2 v2 files" : "Block format 'qcow' used by device '' does not support feature 'bitmaps'");
            }

            change(_bitmaps!);
        }
    }

    /// <summary>Writes the bitmaps out and releases what they replaced (under the lock, at close).</summary>
    private void StoreBitmaps()
    {
        if (_bitmaps is not { NeedStore: true } set)
        {
            return;
        }

        var entries = new List<Bitmap>();
        var replaced = new List<Bitmap>();
        foreach (DirtyBitmap b in set.All)
        {
            // A bitmap in use at open stays on disk as it was: its bits are unknown.
            entries.Add(b.Inconsistent ? b.Stored! : StoreBitmap(b));
        }

        foreach (Bitmap old in set.Loaded.Bitmaps)
        {
            if (!entries.Contains(old))
            {
                replaced.Add(old);
            }
        }

        byte[] directory = Bitmaps.encode(ListModule.OfSeq(entries));
        ulong directoryAt = directory.Length == 0 ? 0 : AllocateClusters(ClustersFor((ulong)directory.Length));
        if (directory.Length > 0)
        {
            _storage.Write((long)directoryAt, directory);
        }

        FlushMetadata();
        Header named = HeaderModule.withBitmaps(ReadHeader(_storage), (uint)entries.Count, (ulong)directory.Length, directoryAt);
        PersistentBitmaps.SwitchDirectory(_storage, named);
        Header = named;

        ReleaseExtent(set.Loaded.Offset, set.Loaded.Bytes);
        foreach (Bitmap old in replaced)
        {
            byte[] table = new byte[old.TableEntries * 8UL];
            _storage.Read((long)old.TableOffset, table);
            foreach (ulong entry in TableEntries.Decode(table))
            {
                if (Bitmaps.tableEntry(Layout.Geometry.ClusterBits, entry) is BitmapTableEntry.StoredAt at)
                {
                    ReleaseExtent(at.offset, (ulong)Layout.ClusterSize);
                }
            }

            ReleaseExtent(old.TableOffset, (ulong)table.Length);
        }

        _bitmaps = null;
    }

    /// <summary>One bitmap's data clusters (those with a bit set) and its table; returns its new directory entry.</summary>
    private Bitmap StoreBitmap(DirtyBitmap b)
    {
        ulong[] table = new ulong[b.TableEntries];
        for (int i = 0; i < table.Length; i++)
        {
            if (b.ClusterData(i) is { } data)
            {
                table[i] = AllocateClusters(1);
                _storage.Write((long)table[i], data);
            }
        }

        byte[] encoded = TableEntries.Encode(table);
        ulong tableAt = AllocateClusters(ClustersFor((ulong)encoded.Length));
        _storage.Write((long)tableAt, encoded);
        return new Bitmap(b.Name, tableAt, (uint)table.Length, b.Enabled ? Bitmaps.AutoFlag : 0, b.GranularityBits, Bitmaps.DirtyTrackingType, 0);
    }

    /// <summary>
    /// <paramref name="count"/> clusters one after another, their refcounts set to 1 (the
    /// planner finds them as it finds a run of data clusters); returns the first one's offset.
    /// </summary>
    private ulong AllocateClusters(int count)
    {
        ulong searchFrom = 0;
        while (true)
        {
            var outcome = Planner.planClusters(Context(), count, searchFrom);
            if (outcome.IsOk)
            {
                (ulong host, Plan plan) = outcome.ResultValue;
                _executor.Execute(plan, default);
                _metadata.FirstFreeCluster = plan.NextFreeCluster;
                _metadata.FileEnd = Math.Max(_metadata.FileEnd, plan.NextFreeCluster << Layout.Geometry.ClusterBits);
                if (plan.Clusters == count)
                {
                    return host;
                }

                // A refcount block was born inside the run: the clusters before it go back.
                ReleaseExtent(host, (ulong)plan.Clusters << Layout.Geometry.ClusterBits);
                continue;
            }

            searchFrom = Satisfy(outcome.ErrorValue, searchFrom);
        }
    }

    private int ClustersFor(ulong bytes) => (int)((bytes + (ulong)Layout.ClusterSize - 1) >> Layout.Geometry.ClusterBits);

    /// <summary>Each cluster the byte range touches loses its reference once the next flush has made the new state durable.</summary>
    private void ReleaseExtent(ulong offset, ulong bytes)
    {
        for (ulong c = offset >> Layout.Geometry.ClusterBits; bytes > 0 && c <= (offset + bytes - 1) >> Layout.Geometry.ClusterBits; c++)
        {
            _metadata.Release(c, false);
        }
    }
}
