// qcow measure: qemu-img measure's required and fully allocated sizes for a new image, from a
// size or from an existing image's allocation.
using System;
using System.Collections.Generic;
using System.IO;
using System.Numerics;
using Qcow.Format;
using Qcow.IO;

namespace Qcow.Cli;

internal static class MeasureCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "fOo", "U", ["output", "size"], ["force-share"]);
        bool json = VerbOptions.Json(opt);

        if ((opt.Value("size") is null) == (opt.Positional.Count == 0) || opt.Positional.Count > 1)
        {
            throw new UsageException("Either --size N or one filename must be specified.");
        }

        string format = opt.Value("O") ?? "raw";
        Dictionary<string, string> options = CreateSpec.ParseOptions(opt.Values("o"));
        if (format == "qcow")
        {
            throw new InvalidOperationException("Block driver 'qcow' does not support size measurement");
        }

        IBlockDevice? source = null;
        if (opt.Positional.Count == 1)
        {
            var settings = VerbOptions.Reading(opt, VerbOptions.WalkingCache);
            source = ImageOpener.Open(opt.Positional[0], opt.Value("f"), settings);
        }

        using (source)
        {
            long size = source?.Length ?? Sizes.Parse(opt.Value("size")!);
            (long required, long fully, long? bitmaps) = format switch
            {
                "raw" => Raw(size),
                "qcow2" => Qcow2(size, source, options),
                _ => throw new UsageException($"Unknown file format '{format}'"),
            };
            if (json)
            {
                stdout.WriteLine(new QemuJson().Add("required", required).Add("fully-allocated", fully).AddIf(bitmaps.HasValue, "bitmaps", bitmaps.GetValueOrDefault()).ToString());
            }
            else
            {
                stdout.Write($"required size: {required}\nfully allocated size: {fully}\n{(bitmaps.HasValue ? $"bitmaps size: {bitmaps}\n" : "")}");
            }
        }

        return 0;
    }

    /// <summary>A raw file needs its whole size, allocated or not.</summary>
    private static (long, long, long?) Raw(long size)
    {
        long rounded = (size + 511) & ~511L;
        return (rounded, rounded, null);
    }

    private static (long, long, long?) Qcow2(long size, IBlockDevice? source, Dictionary<string, string> options)
    {
        int clusterSize = options.TryGetValue("cluster_size", out string? cs) ? checked((int)Sizes.Parse(cs)) : 65536;
        int refcountBits = options.TryGetValue("refcount_bits", out string? rb) ? int.Parse(rb, System.Globalization.CultureInfo.InvariantCulture) : 16;
        bool extendedL2 = options.GetValueOrDefault("extended_l2", "off") is "on" or "true";
        bool v3 = options.GetValueOrDefault("compat", "1.1") is not ("0.10" or "v2");
        if (!BitOperations.IsPow2(clusterSize) || clusterSize < 512 || clusterSize > 2 << 20 || !BitOperations.IsPow2(refcountBits) || refcountBits > 64)
        {
            throw new UsageException("Invalid cluster_size or refcount_bits");
        }

        int clusterBits = BitOperations.Log2((uint)clusterSize);
        long virtualSize = (size + clusterSize - 1) / clusterSize * clusterSize;
        if (!Measure.fitsL1Limit(virtualSize, clusterBits, extendedL2))
        {
            throw new InvalidOperationException("The image size is too large (try using a larger cluster size)");
        }

        long needed = source is null ? 0 : options.ContainsKey("backing_file") ? virtualSize : NeededData(source, clusterSize);
        if (options.GetValueOrDefault("preallocation", "off") is "full" or "falloc")
        {
            needed = virtualSize;
        }

        Measure.Costs costs = Measure.costs(virtualSize, clusterBits, BitOperations.Log2((uint)refcountBits), extendedL2);
        long? bitmaps = v3 && source is QcowDevice { Layout.Version: 3 } q ? BitmapBytes(q, clusterSize) : null;
        return (Measure.required(costs, needed), costs.FullyAllocated, bitmaps);
    }

    /// <summary>
    /// qcow2_measure_bitmaps: every persistent bitmap of the source, fully allocated in the new
    /// image's clusters, its table, and its directory entry.
    /// </summary>
    private static long BitmapBytes(QcowDevice source, long clusterSize)
    {
        long total = 0;
        long directory = 0;
        foreach (Bitmap bitmap in source.ReadBitmaps().Bitmaps)
        {
            long bits = (source.Length + (1L << bitmap.GranularityBits) - 1) >> bitmap.GranularityBits;
            long clusters = (((bits + 7) / 8) + clusterSize - 1) / clusterSize;
            total += (clusters * clusterSize) + RoundUp(clusters * 8, clusterSize);
            directory += RoundUp(24 + System.Text.Encoding.UTF8.GetByteCount(bitmap.Name), 8);
        }

        return total + RoundUp(directory, clusterSize);
    }

    private static long RoundUp(long n, long to) => (n + to - 1) / to * to;

    /// <summary>Clusters holding data anywhere in the source's chain, counted from their start as qemu-img counts them.</summary>
    private static long NeededData(IBlockDevice source, long clusterSize)
    {
        long needed = 0;
        for (long offset = 0; offset < source.Length;)
        {
            BlockStatus s = source.Status(offset, source.Length - offset);
            long length = s.Length;
            if (!s.Zero && s.Data && s.Present)
            {
                length = ((offset + length + clusterSize - 1) / clusterSize * clusterSize) - offset;
                needed += (offset % clusterSize) + length;
            }

            offset += length;
        }

        return needed;
    }
}
