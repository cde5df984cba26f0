// The structure-aware mutator: a mutant of a seed image with one to five changes, each aimed at
// one of the seed's fields (header fields, extension types and lengths, the backing file name,
// L1, L2 and refcount table entries, refcount block entries, snapshot fields) or at its bytes
// (flips, truncation, growth). The same seed and Random state always give the same mutant.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Qcow.Format;

namespace Qcow.Examples.Reliability;

internal static class FuzzMutator
{
    /// <summary>How often each kind of field is aimed at, relative to the others.</summary>
    private static readonly Dictionary<FuzzField, int> s_weights = new()
    {
        [FuzzField.HeaderField] = 6,
        [FuzzField.ExtensionType] = 1,
        [FuzzField.ExtensionLength] = 1,
        [FuzzField.BackingName] = 1,
        [FuzzField.L1Entry] = 3,
        [FuzzField.L2Entry] = 6,
        [FuzzField.RefcountTableEntry] = 2,
        [FuzzField.RefcountBlockEntry] = 2,
        [FuzzField.SnapshotField] = 2,
    };

    /// <summary>Where arithmetic on offsets and sizes tends to overflow.</summary>
    private static readonly ulong[] s_boundaries =
        [1UL << 31, (1UL << 31) - 1, (1UL << 32) - 1, 1UL << 32, 1UL << 55, 1UL << 56, 1UL << 61, 1UL << 62, 1UL << 63, (1UL << 63) - 1];

    private static readonly uint[] s_extensionTypes =
        [HeaderModule.BackingFormatMagic, HeaderModule.FeatureNameTableMagic, HeaderModule.BitmapsMagic, HeaderModule.FullDiskEncryptionMagic, HeaderModule.ExternalDataFileMagic, 0, 0xdeadbeef];

    /// <summary>Backing names a hostile image might carry: protocols, paths out of the directory, junk.</summary>
    private static readonly byte[][] s_backingNames =
    [
        .. new[]
        {
            "json:{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}",
            "nbd://127.0.0.1:10809/disk",
            "http://example.com/disk.img",
            "file:/etc/passwd",
            "/etc/passwd",
            "../../../../etc/shadow",
            "base.raw",
            new string('a', 1100),
        }.Select(Encoding.UTF8.GetBytes),
        [0],
        [0xff, 0xfe, 0xc0, 0x80],
    ];

    public static byte[] Mutate(FuzzTargets seed, Random rng, List<string>? trace)
    {
        byte[] image = (byte[])seed.Seed.Image.Clone();
        int changes = rng.Next(10) switch
        {
            < 6 => 1,
            < 8 => 2,
            _ => rng.Next(3, 6),
        };
        for (int i = 0; i < changes; i++)
        {
            image = rng.Next(10) switch
            {
                0 => FlipBytes(seed, image, rng, trace),
                1 => rng.Next(4) == 0 ? Grow(seed, image, rng, trace) : Truncate(seed, image, rng, trace),
                _ => ChangeField(seed, image, rng, trace),
            };
        }

        return image;
    }

    private static byte[] ChangeField(FuzzTargets seed, byte[] image, Random rng, List<string>? trace)
    {
        int pick = rng.Next(seed.Fields.Sum(f => s_weights[f]));
        FuzzField field = seed.Fields.First(f => (pick -= s_weights[f]) < 0);
        FuzzTarget t = seed[field][rng.Next(seed[field].Count)];
        if (t.Offset + t.Width > image.Length)
        {
            return image;
        }

        if (field == FuzzField.BackingName)
        {
            return ChangeBackingName(seed, image, t, rng, trace);
        }

        ulong old = t.Read(image);
        ulong value = field switch
        {
            FuzzField.L1Entry or FuzzField.L2Entry or FuzzField.RefcountTableEntry when rng.Next(2) == 0 => EntryValue(seed, image, t, old, rng),
            FuzzField.ExtensionType when rng.Next(2) == 0 => s_extensionTypes[rng.Next(s_extensionTypes.Length)],
            _ => FieldValue(seed, image, old, t.Width, rng),
        };
        t.Write(image, value);
        trace?.Add($"{field} at 0x{t.Offset:x} ({t.Width} bytes): 0x{old:x} -> 0x{t.Read(image):x}");
        return image;
    }

    /// <summary>A value for any field: the edges of its width, of the cluster size and of the file, overflow boundaries, small numbers, other structures' offsets.</summary>
    private static ulong FieldValue(FuzzTargets seed, byte[] image, ulong old, int width, Random rng)
    {
        ulong cs = 1UL << seed.ClusterBits;
        ulong end = (ulong)image.Length;
        int bits = width * 8;
        return rng.Next(16) switch
        {
            0 => 0,
            1 => 1,
            2 => ulong.MaxValue,
            3 => old + 1,
            4 => old - 1,
            5 => old ^ (1UL << rng.Next(bits)),
            6 => (ulong)rng.NextInt64() << rng.Next(2),
            7 => 1UL << rng.Next(bits),
            8 => (1UL << rng.Next(bits)) - 1,
            9 => cs - 1 + (ulong)rng.Next(3),
            10 => Pick(rng, end, end - 1, AlignUp(end, cs), AlignUp(end, cs) + cs, end * 2),
            11 => (ulong)rng.Next(70),
            12 => (ulong)seed.Structures[rng.Next(seed.Structures.Count)],
            13 => rng.Next(2) == 0 ? old << rng.Next(1, 9) : old >> rng.Next(1, 9),
            14 => s_boundaries[rng.Next(s_boundaries.Length)],
            _ => old + cs * (ulong)rng.Next(-2, 3),
        };
    }

    /// <summary>
    /// A value for an L1, L2 or refcount table entry: its offset past the end of the file, far
    /// away, misaligned, or at another structure (flags kept); a flag bit toggled (COPIED,
    /// compressed, zero), a reserved bit set, a compressed descriptor with a random length, or
    /// another entry's value (a cluster referenced twice).
    /// </summary>
    private static ulong EntryValue(FuzzTargets seed, byte[] image, FuzzTarget t, ulong old, Random rng)
    {
        ulong cs = 1UL << seed.ClusterBits;
        ulong mask = seed.Version == 1 ? ~L2Entry.V1CompressedFlag : L2Entry.OffsetMask;
        ulong flags = old & ~mask;
        int lengthShift = seed.Version == 1 ? 63 - seed.ClusterBits : L2Entry.compressedOffsetBits(seed.ClusterBits);
        ulong compressed = seed.Version == 1 ? L2Entry.V1CompressedFlag : L2Entry.CompressedFlag;
        return rng.Next(11) switch
        {
            0 => flags | ((AlignUp((ulong)image.Length, cs) + cs * (ulong)rng.Next(4)) & mask),
            1 => flags | (1UL << rng.Next(30, 63) & (rng.Next(2) == 0 ? mask : ulong.MaxValue)),
            2 => old + Pick(rng, 1, 8, 256, cs / 2),
            3 => flags | ((ulong)seed.Structures[rng.Next(seed.Structures.Count)] & mask),
            4 => old ^ (1UL << 63),
            5 => old ^ (1UL << 62),
            6 => old ^ 1,
            7 => old | (1UL << (rng.Next(2) == 0 ? rng.Next(1, 9) : rng.Next(56, 62))),
            8 => (old & ((1UL << lengthShift) - 1)) | compressed | ((ulong)rng.NextInt64() << lengthShift & ~L2Entry.CopiedFlag),
            9 => old | 1,
            _ => Another(seed[t.Field][rng.Next(seed[t.Field].Count)]),
        };

        // Another entry's value, unless a truncation took it away.
        ulong Another(FuzzTarget other) => other.Offset + other.Width <= image.Length ? other.Read(image) : old;
    }

    /// <summary>Writes another name where the backing name is, and its length into backing_file_size (offset 16 in both versions).</summary>
    private static byte[] ChangeBackingName(FuzzTargets seed, byte[] image, FuzzTarget t, Random rng, List<string>? trace)
    {
        byte[] name = s_backingNames[rng.Next(s_backingNames.Length)];
        int room = seed.Version == 1 ? t.Width : (1 << seed.ClusterBits) - t.Offset;
        int n = Math.Min(name.Length, Math.Min(room, image.Length - t.Offset));
        name.AsSpan(0, n).CopyTo(image.AsSpan(t.Offset));
        new FuzzTarget(FuzzField.HeaderField, 16, 4).Write(image, (ulong)n);
        trace?.Add($"backing name at 0x{t.Offset:x}: \"{Encoding.UTF8.GetString(name, 0, n)}\"");
        return image;
    }

    /// <summary>Flips one to eight bytes, mostly in the first cluster of some structure.</summary>
    private static byte[] FlipBytes(FuzzTargets seed, byte[] image, Random rng, List<string>? trace)
    {
        int cs = 1 << seed.ClusterBits;
        for (int i = rng.Next(1, 9); i > 0 && image.Length > 0; i--)
        {
            long at = rng.Next(3) == 0 ? rng.Next(image.Length) : seed.Structures[rng.Next(seed.Structures.Count)] + rng.Next(cs);
            if (at < image.Length)
            {
                byte flip = (byte)rng.Next(1, 256);
                image[at] ^= flip;
                trace?.Add($"byte at 0x{at:x} ^= 0x{flip:x2}");
            }
        }

        return image;
    }

    /// <summary>Cuts the file anywhere, at or just past a structure's start, in its last cluster, or inside the header.</summary>
    private static byte[] Truncate(FuzzTargets seed, byte[] image, Random rng, List<string>? trace)
    {
        long length = rng.Next(4) switch
        {
            0 => rng.Next(image.Length + 1),
            1 => seed.Structures[rng.Next(seed.Structures.Count)] + rng.Next(16),
            2 => image.Length - rng.Next(1, (1 << seed.ClusterBits) + 1),
            _ => rng.Next(128),
        };
        length = Math.Clamp(length, 0, image.Length);
        trace?.Add($"truncated from 0x{image.Length:x} to 0x{length:x} bytes");
        Array.Resize(ref image, (int)length);
        return image;
    }

    /// <summary>Appends up to two clusters of zeros or junk: a file that ends off the cluster grid.</summary>
    private static byte[] Grow(FuzzTargets seed, byte[] image, Random rng, List<string>? trace)
    {
        int extra = rng.Next(1, 2 << seed.ClusterBits);
        int start = image.Length;
        Array.Resize(ref image, start + extra);
        if (rng.Next(2) == 0)
        {
            rng.NextBytes(image.AsSpan(start));
        }

        trace?.Add($"grown by 0x{extra:x} bytes");
        return image;
    }

    private static ulong AlignUp(ulong n, ulong cs) => (n + cs - 1) & ~(cs - 1);

    private static ulong Pick(Random rng, params ulong[] values) => values[rng.Next(values.Length)];
}
