// The persistent dirty bitmaps of an image open read-write, as QEMU keeps them: loaded at open
// and marked in use on disk (so a crash leaves them marked, and the next open knows their bits
// are stale); every write, zero write and discard sets the bits of the enabled ones; the
// operations of qemu-img bitmap change them in memory; QcowDevice stores them at close.
using System;
using System.Collections.Generic;
using System.Linq;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class PersistentBitmaps
{
    private readonly List<DirtyBitmap> _bitmaps;
    private readonly int _clusterBits;
    private readonly ulong _virtualSize;

    private PersistentBitmaps(BitmapDirectory loaded, List<DirtyBitmap> bitmaps, int clusterBits, ulong virtualSize)
    {
        Loaded = loaded;
        _bitmaps = bitmaps;
        _clusterBits = clusterBits;
        _virtualSize = virtualSize;
    }

    /// <summary>The directory as the image held it at open: what a store replaces.</summary>
    public BitmapDirectory Loaded { get; }

    public IReadOnlyList<DirtyBitmap> All => _bitmaps;

    /// <summary>Whether a close has anything to store or to take away.</summary>
    public bool NeedStore => _bitmaps.Count > 0 || Loaded.Bitmaps.Count > 0;

    /// <summary>
    /// The bitmaps the header names, each checked as QEMU checks a bitmap it is to keep current
    /// (an image whose bitmaps it would refuse is refused), their bits read.
    /// </summary>
    public static PersistentBitmaps Load(IStorage storage, Header header)
    {
        BitmapDirectory directory = BitmapDirectory.Read(storage, header);
        var bitmaps = new List<DirtyBitmap>();
        long budget = storage.Length;
        foreach (Bitmap entry in directory.Bitmaps)
        {
            if (Bitmaps.invalid(header.ClusterBits, header.Size, entry) is { } problem)
            {
                throw FormatErrors.ToException(FormatError.NewInconsistent(Structure.HeaderExtension, directory.Offset, problem.Value), storage.Path);
            }

            bitmaps.Add(DirtyBitmap.Load(storage, entry, header.ClusterBits, header.Size, ref budget));
        }

        return new PersistentBitmaps(directory, bitmaps, header.ClusterBits, header.Size);
    }

    /// <summary>
    /// Marks the bitmaps whose bits were loaded as in use, in the directory where it lies, as
    /// QEMU's update_ext_header_and_dir_in_place does: the autoclear bit is cleared (flushed), the
    /// directory rewritten, then the bit set again (flushed). A crash between leaves the bitmaps
    /// invalid, never a directory half-written and trusted.
    /// </summary>
    public void MarkInUse(IStorage storage, Header header)
    {
        if (!_bitmaps.Any(b => !b.Inconsistent))
        {
            return;
        }

        var marked = Loaded.Bitmaps.Select(b => new Bitmap(b.Name, b.TableOffset, b.TableEntries, b.Flags | Bitmaps.InUseFlag, b.GranularityBits, b.Type, b.ExtraDataBytes));
        byte[] directory = Bitmaps.encode(Microsoft.FSharp.Collections.ListModule.OfSeq(marked));
        WriteAutoclear(storage, header.AutoclearFeatures & ~HeaderModule.BitmapsBit);
        storage.Write((long)Loaded.Offset, directory);
        storage.Flush();
        WriteAutoclear(storage, header.AutoclearFeatures);
    }

    /// <summary>A guest write, zero write or discard over these bytes: the enabled bitmaps record it.</summary>
    public void Track(long offset, long length)
    {
        foreach (DirtyBitmap b in _bitmaps)
        {
            if (b.Enabled && !b.Inconsistent)
            {
                b.Mark((ulong)offset, (ulong)length);
            }
        }
    }

    /// <summary>qemu-img bitmap --add: a new, empty bitmap (granularity null: QEMU's default for the image).</summary>
    public void Add(string name, ulong? granularity, bool enabled)
    {
        if (Find(name) is not null)
        {
            throw new InvalidOperationException($"Bitmap already exists: {name}");
        }

        if (_bitmaps.Count >= Bitmaps.MaxCount)
        {
            throw new InvalidOperationException("Too many persistent bitmaps");
        }

        ulong bytes = granularity ?? (1UL << Bitmaps.defaultGranularityBits(_clusterBits));
        var check = Bitmaps.checkNew(_clusterBits, _virtualSize, name, bytes);
        if (check.IsError)
        {
            throw new ArgumentException(check.ErrorValue);
        }

        _bitmaps.Add(DirtyBitmap.Empty(name, check.ResultValue, _clusterBits, _virtualSize, enabled));
    }

    /// <summary>qemu-img bitmap --remove: the bitmap goes, in use or not.</summary>
    public void Remove(string name) => _bitmaps.Remove(Find(name) ?? throw new KeyNotFoundException($"Dirty bitmap '{name}' not found"));

    /// <summary>The bitmap of this name, usable: it exists and is not in use.</summary>
    public DirtyBitmap Usable(string name) => Usable(_bitmaps, name);

    /// <summary>The bitmap of this name among <paramref name="all"/>, refused as qemu-img refuses it when missing or left in use.</summary>
    public static DirtyBitmap Usable(IReadOnlyList<DirtyBitmap> all, string name)
    {
        DirtyBitmap b = all.FirstOrDefault(candidate => candidate.Name == name) ?? throw new KeyNotFoundException($"Dirty bitmap '{name}' not found");
        return b.Inconsistent
            ? throw new InvalidOperationException($"Bitmap '{name}' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete this bitmap from disk")
            : b;
    }

    public DirtyBitmap? Find(string name) => _bitmaps.FirstOrDefault(b => b.Name == name);

    /// <summary>
    /// The header's switch to another bitmap directory, safe to cut at any point: the autoclear
    /// bit is cleared (flushed), so that an extension half-written is never trusted; the header
    /// bytes that differ are written (flushed); the bit is set again (flushed). A cut before the
    /// last write leaves no valid bitmaps and their clusters leaked, never a corruption, as long
    /// as the header keeps its layout (only a first bitmap added or the last removed moves what
    /// follows the extension).
    /// </summary>
    public static void SwitchDirectory(IStorage storage, Header named)
    {
        ulong cleared = named.AutoclearFeatures & ~HeaderModule.BitmapsBit;
        WriteAutoclear(storage, cleared);
        byte[] after = HeaderEncode.encode(HeaderModule.withAutoclear(named, cleared)).OrThrow(storage.Path);
        byte[] before = new byte[after.Length];
        storage.Read(0, before);
        int first = before.AsSpan().CommonPrefixLength(after);
        if (first < after.Length)
        {
            int last = after.Length - 1;
            while (before[last] == after[last])
            {
                last--;
            }

            storage.Write(first, after.AsSpan(first, last - first + 1));
            storage.Flush();
        }

        if (named.AutoclearFeatures != cleared)
        {
            WriteAutoclear(storage, named.AutoclearFeatures);
        }
    }

    private static void WriteAutoclear(IStorage storage, ulong autoclear)
    {
        storage.Write(HeaderEncode.AutoclearFieldOffset, HeaderEncode.featureField(autoclear));
        storage.Flush();
    }
}
