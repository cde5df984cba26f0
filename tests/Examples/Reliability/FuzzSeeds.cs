// The images the fuzzer mutates. Most are made by the library itself: qcow v1, qcow2 v2 and v3;
// 512 B, 4 KiB and 64 KiB clusters; refcounts from 1 to 64 bits; data, zero and discarded
// clusters; a backing file. The rest were made once by qemu-img 7.2 for what the library does not
// write, and are kept gzipped in FuzzSeeds/ (a few hundred bytes each):
//   compressed.qcow2   create -o cluster_size=4096 1M; qemu-io write -c 0 4k, -c 8k 8k, 64k 4k, -z 128k 4k, -c 1020k 4k
//   zstd.qcow2         create -o cluster_size=4096,compression_type=zstd 1M; write -c 0 4k, -c 12k 8k, 64k 4k
//   snapshots.qcow2    create -o cluster_size=512 1M; write 0 4k, -c 8k 1k; snapshot -c first;
//                      write 2k 4k, -z 512k 4k; snapshot -c second; discard 0 1k
//   v2-snapshot.qcow2  create -o compat=0.10,cluster_size=4096 1M; write 0 8k, -c 16k 4k; snapshot -c snap; write 4k 8k
//   backing.qcow2      create -o cluster_size=4096 -b base.raw -F raw 1M; write 6k 4k
//   extended-l2.qcow2  create -o extended_l2=on,cluster_size=16k 1M; write 0 1k, 20k 3k, -z 40k 512, -c 64k 16k
//   v1-compressed.qcow create -f qcow 1M; write -c 0 4k, 8k 8k, -c 512k 4k
//   v1-backing.qcow    create -f qcow -b base.raw -F raw 1M; write 1k 2k
using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using Qcow.Examples.Oracle;
using Qcow.IO;

namespace Qcow.Examples.Reliability;

/// <summary>
/// An image to start mutating from. <paramref name="Layout"/>, when given, is the valid image
/// whose structures the fuzzer aims at, for an image whose own header does not say where they are.
/// </summary>
internal sealed record FuzzSeed(string Name, byte[] Image, byte[]? Layout = null)
{
    public override string ToString() => Name;
}

internal static class FuzzSeeds
{
    private const long DiskSize = 1 << 20;

    /// <summary>What every seed's backing file holds: 1 MiB of a pattern that tells guest offsets apart.</summary>
    private static readonly byte[] s_backing = Pattern(DiskSize, 0x5a);

    public static IReadOnlyList<FuzzSeed> All { get; } = WithHostileHeaders([.. Built(), .. MadeByQemu()]);

    /// <summary>The backing file of every image, whatever its name: an in-memory raw file, read-only.</summary>
    public static IBlockDevice OpenBacking(string name, string? format) =>
        new RawDevice(new MemoryStorage(name, s_backing, canWrite: false));

    private static List<FuzzSeed> Built()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("base.raw"), s_backing);
        return
        [
            Make(dir, "qcow2 v3, 64 KiB clusters, empty", new QcowCreateOptions { Size = DiskSize }, fill: false),
            Make(dir, "qcow2 v3, 64 KiB clusters, 64-bit refcounts", new QcowCreateOptions { Size = 2 * DiskSize, RefcountBits = 64 }),
            Make(dir, "qcow2 v3, 4 KiB clusters, 1-bit refcounts", new QcowCreateOptions { Size = DiskSize, ClusterSize = 4096, RefcountBits = 1 }),
            Make(dir, "qcow2 v3, 4 KiB clusters, 8-bit lazy refcounts", new QcowCreateOptions { Size = DiskSize, ClusterSize = 4096, RefcountBits = 8, LazyRefcounts = true }),
            Make(dir, "qcow2 v3, 512 B clusters", new QcowCreateOptions { Size = DiskSize, ClusterSize = 512 }),
            Make(dir, "qcow2 v3, 512 B clusters, 64-bit refcounts", new QcowCreateOptions { Size = DiskSize, ClusterSize = 512, RefcountBits = 64 }),
            Make(dir, "qcow2 v3, 4 KiB clusters, backing file", new QcowCreateOptions { Size = DiskSize, ClusterSize = 4096, BackingFile = "base.raw", BackingFormat = QcowImageFormat.Raw }),
            Make(dir, "qcow2 v2, 4 KiB clusters", new QcowCreateOptions { Size = DiskSize, ClusterSize = 4096, Compat = QcowCompat.V0_10 }),
            Make(dir, "qcow2 v2, 512 B clusters, empty", new QcowCreateOptions { Size = DiskSize, ClusterSize = 512, Compat = QcowCompat.V0_10 }, fill: false),
            Make(dir, "qcow v1, 4 KiB clusters", new QcowCreateOptions { Size = DiskSize, Format = QcowImageFormat.Qcow }),
            Make(dir, "qcow v1, 4 KiB clusters, empty", new QcowCreateOptions { Size = DiskSize, Format = QcowImageFormat.Qcow }, fill: false),
            Make(dir, "qcow v1, 512 B clusters, backing file", new QcowCreateOptions { Size = DiskSize, Format = QcowImageFormat.Qcow, BackingFile = "base.raw" }),
        ];
    }

    /// <summary>
    /// Creates an image through the public API and, unless told not to, gives it data clusters in
    /// several L2 tables, a partly written cluster over the backing file, zeroed and discarded clusters.
    /// </summary>
    private static FuzzSeed Make(TempDir dir, string name, QcowCreateOptions options, bool fill = true)
    {
        string path = dir.File("seed");
        using (QcowImage image = QcowImage.Create(path, options))
        {
            if (fill)
            {
                int cs = image.Info.ClusterSize;
                long size = image.Length;
                image.Write(0, Pattern(3 * cs, 0x11));
                image.Write(size / 2 + cs / 2, Pattern(2 * cs, 0x22));
                image.Write(size - cs, Pattern(cs, 0x33));
                image.WriteZeroes(cs, cs);
                image.Discard(2 * cs, cs);
            }
        }

        return new FuzzSeed(name, File.ReadAllBytes(path));
    }

    /// <summary>
    /// The seeds, and a 4 KiB-cluster qcow2 image with the headers QEMU's tests and fuzzer found
    /// Qcow misreading: unsupported versions, tables QEMU cannot read (at or past its largest
    /// request offset, or past the end of the file) and hostile table counts.
    /// </summary>
    private static List<FuzzSeed> WithHostileHeaders(List<FuzzSeed> seeds)
    {
        FuzzSeed plain = seeds.Find(s => s.Name == "qcow2 v3, 4 KiB clusters, 1-bit refcounts")!;
        (string Name, int Field, ulong Value, int Bytes)[] patches =
        [
            ("version 4", 4, 4, 4),
            ("version 0xffffffff", 4, 0xffffffff, 4),
            ("L1 table at the largest request offset", 40, 0x7FFFFFFFC0000000, 8),
            ("L1 table past the end of the file", 40, 0x40000000, 8),
            ("refcount table past the end of the file", 48, 0x40000000, 8),
            ("2^31 L1 entries", 36, 0x80000000, 4),
            ("2^30 refcount table clusters", 56, 0x40000000, 4),
            ("2^31 snapshots", 60, 0x80000000, 4),
        ];
        foreach ((string name, int field, ulong value, int bytes) in patches)
        {
            byte[] image = (byte[])plain.Image.Clone();
            for (int i = 0; i < bytes; i++)
            {
                image[field + i] = (byte)(value >> (8 * (bytes - 1 - i)));
            }

            seeds.Add(new FuzzSeed($"{plain.Name}, {name}", image, plain.Image));
        }

        return seeds;
    }

    private static IEnumerable<FuzzSeed> MadeByQemu()
    {
        string[] names = ["compressed.qcow2", "zstd.qcow2", "snapshots.qcow2", "v2-snapshot.qcow2", "backing.qcow2", "extended-l2.qcow2", "v1-compressed.qcow", "v1-backing.qcow"];
        foreach (string name in names)
        {
            using Stream resource = typeof(FuzzSeeds).Assembly.GetManifestResourceStream(name + ".gz")
                ?? throw new InvalidOperationException($"the fuzz seed {name}.gz is not embedded");
            using var gzip = new GZipStream(resource, CompressionMode.Decompress);
            using var image = new MemoryStream();
            gzip.CopyTo(image);
            yield return new FuzzSeed("qemu-img: " + name, image.ToArray());
        }
    }

    private static byte[] Pattern(long length, byte salt)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)((i >> 9) * 31 + i + salt);
        }

        return bytes;
    }
}
