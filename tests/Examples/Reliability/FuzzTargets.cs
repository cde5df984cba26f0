// Where a seed image's structures lie, found by decoding the seed: header fields, header
// extensions, the backing file name, L1 and L2 entries (of the active tree and of every
// snapshot's), refcount table entries, refcount block entries and snapshot table fields; and
// where its metadata and data clusters start, for entries made to point at the wrong thing.
using System;
using System.Collections.Generic;
using System.Linq;
using Qcow.Format;
using Qcow.IO;

namespace Qcow.Examples.Reliability;

internal enum FuzzField
{
    HeaderField,
    ExtensionType,
    ExtensionLength,
    BackingName,
    L1Entry,
    L2Entry,
    RefcountTableEntry,
    RefcountBlockEntry,
    SnapshotField,
}

/// <summary>A big-endian field of a seed image: what it is, where it is, how many bytes wide.</summary>
internal readonly record struct FuzzTarget(FuzzField Field, int Offset, int Width)
{
    public ulong Read(ReadOnlySpan<byte> image) => ReadBigEndian(image.Slice(Offset, Width));

    /// <summary>Stores the value's low <see cref="Width"/> bytes.</summary>
    public void Write(Span<byte> image, ulong value)
    {
        for (int i = Width - 1; i >= 0; i--, value >>= 8)
        {
            image[Offset + i] = (byte)value;
        }
    }

    public static ulong ReadBigEndian(ReadOnlySpan<byte> bytes)
    {
        ulong value = 0;
        foreach (byte b in bytes)
        {
            value = value << 8 | b;
        }

        return value;
    }
}

internal sealed class FuzzTargets
{
    private static readonly (int Offset, int Width)[] s_qcow2Header =
        [(0, 4), (4, 4), (8, 8), (16, 4), (20, 4), (24, 8), (32, 4), (36, 4), (40, 8), (48, 8), (56, 4), (60, 4), (64, 8)];

    private static readonly (int Offset, int Width)[] s_v3Header = [(72, 8), (80, 8), (88, 8), (96, 4), (100, 4)];

    private static readonly (int Offset, int Width)[] s_v1Header =
        [(0, 4), (4, 4), (8, 8), (16, 4), (20, 4), (24, 8), (32, 1), (33, 1), (34, 2), (36, 4), (40, 8)];

    /// <summary>l1_table_offset, l1_size, id_str_size, name_size, vm_state_size, extra_data_size.</summary>
    private static readonly (int Offset, int Width)[] s_snapshotFields = [(0, 8), (8, 4), (12, 2), (14, 2), (32, 4), (36, 4)];

    private readonly byte[] _image;
    private readonly Dictionary<FuzzField, List<FuzzTarget>> _targets = new();
    private readonly SortedSet<long> _structures = new();
    private readonly HashSet<ulong> _l2Tables = new();

    private FuzzTargets(FuzzSeed seed)
    {
        Seed = seed;
        _image = seed.Layout ?? seed.Image;
        Version = (int)U(4, 4);
        if (Version == 1)
        {
            MapV1();
        }
        else
        {
            MapQcow2();
        }

        Fields = _targets.Keys.ToArray();
        Structures = _structures.ToArray();
    }

    public static IReadOnlyList<FuzzTargets> All { get; } = FuzzSeeds.All.Select(s => new FuzzTargets(s)).ToArray();

    public FuzzSeed Seed { get; }

    public int Version { get; }

    public int ClusterBits { get; private set; }

    /// <summary>The kinds of field this seed has.</summary>
    public IReadOnlyList<FuzzField> Fields { get; }

    /// <summary>Where metadata structures and data clusters start.</summary>
    public IReadOnlyList<long> Structures { get; }

    public IReadOnlyList<FuzzTarget> this[FuzzField field] => _targets[field];

    private void MapQcow2()
    {
        Header h = QcowDevice.ReadHeader(new MemoryStorage(Seed.Name, _image, canWrite: false));
        ClusterBits = h.ClusterBits;
        int cs = 1 << h.ClusterBits;
        AddAll(FuzzField.HeaderField, 0, s_qcow2Header);
        if (h.Version >= 3)
        {
            AddAll(FuzzField.HeaderField, 0, s_v3Header);
            if (h.HeaderLength > 104)
            {
                Add(FuzzField.HeaderField, 104, 1);
            }
        }

        long finish = h.BackingFileOffset != 0 ? (long)h.BackingFileOffset : cs;
        for (long at = h.Version >= 3 ? h.HeaderLength : 72; at + 8 <= finish;)
        {
            Add(FuzzField.ExtensionType, at, 4);
            Add(FuzzField.ExtensionLength, at + 4, 4);
            if (U(at, 4) == 0)
            {
                break;
            }

            at += 8 + (long)((U(at + 4, 4) + 7) & ~7UL);
        }

        if (h.BackingFileOffset != 0)
        {
            Add(FuzzField.BackingName, (long)h.BackingFileOffset, (int)h.BackingFileSize);
        }

        _structures.Add(0);
        MapTree(h.L1TableOffset, h.L1Size, 1 << h.ClusterBits);
        MapRefcounts((long)h.RefcountTableOffset, (long)h.RefcountTableClusters * cs, h.RefcountOrder, cs);
        long entryAt = (long)h.SnapshotsOffset;
        for (uint i = 0; i < h.SnapshotCount; i++)
        {
            _structures.Add(entryAt);
            uint extra = (uint)U(entryAt + 36, 4);
            AddAll(FuzzField.SnapshotField, entryAt, s_snapshotFields);
            AddAll(FuzzField.SnapshotField, entryAt, extra >= 16 ? [(40, 8), (48, 8)] : extra >= 8 ? [(40, 8)] : []);
            MapTree(U(entryAt, 8), (uint)U(entryAt + 8, 4), 1 << h.ClusterBits);
            entryAt += (long)SnapshotModule.entryBytes(_image.AsSpan((int)entryAt, SnapshotModule.FixedBytes), (ulong)entryAt).OrThrow(Seed.Name);
        }
    }

    private void MapV1()
    {
        QcowV1Header h = QcowV1HeaderModule.decode(_image).OrThrow(Seed.Name);
        ClusterBits = h.ClusterBits;
        AddAll(FuzzField.HeaderField, 0, s_v1Header);
        if (h.BackingFileOffset != 0)
        {
            Add(FuzzField.BackingName, (long)h.BackingFileOffset, (int)h.BackingFileSize);
        }

        _structures.Add(0);
        MapTree(h.L1TableOffset, (uint)QcowV1HeaderModule.l1Size(h), GeometryModule.l2TableBytes(QcowV1HeaderModule.geometry(h)));
    }

    /// <summary>An L1 table's entries, and every entry of the L2 tables it names that maps something, or starts or ends its table.</summary>
    private void MapTree(ulong l1Offset, uint l1Size, int tableBytes)
    {
        _structures.Add((long)l1Offset);
        for (long at = (long)l1Offset; at < (long)l1Offset + l1Size * 8L && at + 8 <= _image.Length; at += 8)
        {
            Add(FuzzField.L1Entry, at, 8);
            ulong table = Version == 1 ? U(at, 8) : U(at, 8) & L1Entry.OffsetMask;
            if (table == 0 || table + (ulong)tableBytes > (ulong)_image.Length || !_l2Tables.Add(table))
            {
                continue;
            }

            _structures.Add((long)table);
            for (int i = 0; i < tableBytes; i += 8)
            {
                ulong entry = U((long)table + i, 8);
                if (entry != 0 || i == 0 || i == tableBytes - 8)
                {
                    Add(FuzzField.L2Entry, (long)table + i, 8);
                }

                if (Version >= 2 && (entry & L2Entry.CompressedFlag) == 0 && (entry & L2Entry.OffsetMask) != 0)
                {
                    _structures.Add((long)(entry & L2Entry.OffsetMask));
                }
            }
        }
    }

    /// <summary>The refcount table's used entries and the next two, and each block's non-zero entries and its first zero one.</summary>
    private void MapRefcounts(long tableOffset, long tableBytes, int order, int cs)
    {
        _structures.Add(tableOffset);
        int zeros = 0;
        for (long at = tableOffset; at < tableOffset + tableBytes && at + 8 <= _image.Length; at += 8)
        {
            ulong block = U(at, 8) & ~Refcount.TableReservedMask;
            if (block == 0 && zeros++ >= 2)
            {
                continue;
            }

            Add(FuzzField.RefcountTableEntry, at, 8);
            if (block == 0 || block + (ulong)cs > (ulong)_image.Length)
            {
                continue;
            }

            _structures.Add((long)block);
            int width = Math.Max(1, (1 << order) / 8);
            bool zeroSeen = false;
            for (int i = 0; i < cs; i += width)
            {
                bool zero = U((long)block + i, width) == 0;
                if (!zero || !zeroSeen)
                {
                    Add(FuzzField.RefcountBlockEntry, (long)block + i, width);
                }

                zeroSeen |= zero;
            }
        }
    }

    private void AddAll(FuzzField field, long start, (int Offset, int Width)[] fields)
    {
        foreach ((int offset, int width) in fields)
        {
            Add(field, start + offset, width);
        }
    }

    private void Add(FuzzField field, long offset, int width)
    {
        if (!_targets.TryGetValue(field, out List<FuzzTarget>? list))
        {
            _targets[field] = list = new List<FuzzTarget>();
        }

        list.Add(new FuzzTarget(field, (int)offset, width));
    }

    private ulong U(long offset, int width) => FuzzTarget.ReadBigEndian(_image.AsSpan((int)offset, width));
}
