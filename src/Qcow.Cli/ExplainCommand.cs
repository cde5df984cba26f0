// qcow explain FILE OFFSET: where a guest byte lives and why — the address arithmetic with this
// image's shifts and masks written out, the raw L1 and L2 entries and what each bit says, and
// the host offset, or why there is none, down the backing chain.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qcow.Format;
using Qcow.IO;

namespace Qcow.Cli;

internal static class ExplainCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "f", "U", ["output"], ["force-share"]);
        if (opt.Positional.Count != 2)
        {
            throw new UsageException("Expecting an image file name and a guest offset");
        }

        bool json = VerbOptions.Json(opt);

        var settings = VerbOptions.Reading(opt, VerbOptions.HeaderCache);
        using IBlockDevice device = ImageOpener.Open(opt.Positional[0], opt.Value("f"), settings);
        long offset = Sizes.Parse(opt.Positional[1]);
        if (offset >= device.Length)
        {
            throw new UsageException($"offset {offset} is past the end of the image ({device.Length} bytes)");
        }

        var layers = new List<Layer>();
        for (IBlockDevice? layer = device; layer != null; layer = (layer as QcowDevice)?.Backing)
        {
            Layer explained = Explain(layer, offset, layers.Count);
            layers.Add(explained);
            if (explained.Verdict != Verdict.Unallocated || offset >= ((layer as QcowDevice)?.Backing?.Length ?? 0))
            {
                break;
            }
        }

        stdout.Write(json ? Json(offset, layers) : Human(offset, layers));
        return 0;
    }

    private enum Verdict
    {
        Data,
        Compressed,
        Zero,
        Unallocated,
    }

    /// <summary>What one layer of the chain says about the offset.</summary>
    private sealed record Layer(IBlockDevice Device, int Depth, EntryTrace? Trace, L2Mapping? Mapping, Verdict Verdict, long HostOffset);

    private static Layer Explain(IBlockDevice device, long offset, int depth)
    {
        if (device is not QcowDevice q)
        {
            return new Layer(device, depth, null, null, Verdict.Data, offset);
        }

        EntryTrace trace = q.Trace(offset);
        int inSub = (int)(offset & (q.Layout.ClusterSize - 1)) / q.Layout.SubclusterSize;
        var classified = q.Layout.ExtendedL2
            ? L2Entry.subclusterMapping(q.Layout.EntryFormat, trace.L2Entry, trace.L2Bitmap, inSub)
            : L2Entry.classify(q.Layout.EntryFormat, trace.L2Entry);
        if (classified.IsError)
        {
            throw new QcowFormatException(q.Path, QcowFormatErrorKind.Inconsistent, QcowStructure.L2Table, trace.L2EntryAt, $"L2 entry 0x{trace.L2Entry:x} is invalid: {classified.ErrorValue}");
        }

        L2Mapping m = classified.ResultValue;
        long inCluster = offset & (q.Layout.ClusterSize - 1);
        return m.Tag switch
        {
            L2Mapping.Tags.Normal => new Layer(q, depth, trace, m, Verdict.Data, (long)m.Host + inCluster),
            L2Mapping.Tags.Compressed => new Layer(q, depth, trace, m, Verdict.Compressed, -1),
            L2Mapping.Tags.ZeroPlain or L2Mapping.Tags.ZeroAllocated => new Layer(q, depth, trace, m, Verdict.Zero, -1),
            _ => new Layer(q, depth, trace, m, Verdict.Unallocated, -1),
        };
    }

    private static string Human(long offset, List<Layer> layers)
    {
        var s = new StringBuilder();
        foreach (Layer layer in layers)
        {
            if (layer.Device is not QcowDevice q)
            {
                s.Append(Inv($"{Indent(layer)}{layer.Device.Path} is raw: guest offset = file offset, so the byte is at 0x{offset:x} in it.\n"));
                continue;
            }

            Geometry g = q.Layout.Geometry;
            int bits = g.ClusterBits;
            int l2Bits = g.L2Bits;
            EntryTrace t = layer.Trace!;
            string p = Indent(layer);
            s.Append(Inv($"{p}{q.Path}: {q.FormatName} version {q.Layout.Version}, cluster_bits {bits} ({q.Layout.ClusterSize} bytes per cluster), l2_bits {l2Bits} ({1 << l2Bits} entries per L2 table)\n"));
            s.Append(Inv($"{p}guest offset 0x{offset:x} ({offset})\n"));
            s.Append(Inv($"{p}  L1 index          = offset >> (cluster_bits + l2_bits) = 0x{offset:x} >> {bits + l2Bits} = {t.L1Index}\n"));
            s.Append(Inv($"{p}  L2 index          = (offset >> cluster_bits) & (2^l2_bits - 1) = (0x{offset:x} >> {bits}) & 0x{(1 << l2Bits) - 1:x} = {t.L2Index}\n"));
            s.Append(Inv($"{p}  offset in cluster = offset & (2^cluster_bits - 1) = 0x{offset:x} & 0x{q.Layout.ClusterSize - 1:x} = 0x{offset & (q.Layout.ClusterSize - 1):x}\n"));
            s.Append(Inv($"{p}L1 entry {t.L1Index}, at 0x{q.Layout.L1Offset:x} + {t.L1Index} × 8 = 0x{t.L1EntryAt:x}: 0x{t.L1Entry:x16}\n"));
            if (q.Layout.Version == 1)
            {
                s.Append(Inv($"{p}  qcow v1: the whole value is the L2 table's offset: 0x{t.L2Table:x}\n"));
            }
            else
            {
                s.Append(Inv($"{p}  bit 63     COPIED           {Bit(t.L1Entry, 63)}  {(Bit(t.L1Entry, 63) == 1 ? "the L2 table's refcount is 1: it is updated in place" : "the L2 table may be shared (a snapshot): it is copied before an update")}\n"));
                s.Append(Inv($"{p}  bits 9-55  L2 table offset  0x{t.L1Entry & L1Entry.OffsetMask:x}\n"));
                s.Append(Inv($"{p}  reserved bits               0x{t.L1Entry & L1Entry.ReservedMask:x}\n"));
            }

            if (t.L2Table == 0)
            {
                s.Append($"{p}No L2 table: nothing in this range is allocated here.\n");
            }
            else
            {
                int entryBytes = q.Layout.Geometry.L2EntryBytes;
                s.Append(Inv($"{p}L2 entry {t.L2Index}, at 0x{t.L2Table:x} + {t.L2Index} × {entryBytes} = 0x{t.L2EntryAt:x}: 0x{t.L2Entry:x16}\n"));
                s.Append(L2Bits(q, t.L2Entry, p));
                if (q.Layout.ExtendedL2)
                {
                    int sub = q.Layout.SubclusterSize;
                    int index = (int)(offset & (q.Layout.ClusterSize - 1)) / sub;
                    s.Append(Inv($"{p}  subcluster bitmap (second word) 0x{t.L2Bitmap:x16}; subcluster = offset in cluster / (cluster_size / 32) = {index}\n"));
                    s.Append(Inv($"{p}  bit {index} allocated = {Bit(t.L2Bitmap, index)}, bit {32 + index} reads as zeros = {Bit(t.L2Bitmap, 32 + index)}\n"));
                }
            }

            s.Append(p).Append(Conclusion(layer, offset, q)).Append('\n');
        }

        return s.ToString();
    }

    private static string L2Bits(QcowDevice q, ulong entry, string p)
    {
        int bits = q.Layout.Geometry.ClusterBits;
        if (q.Layout.Version == 1)
        {
            return (entry & L2Entry.V1CompressedFlag) != 0
                ? Inv($"{p}  bit 63     COMPRESSED       1\n{p}  bits {63 - bits}-62  compressed bytes  {(entry >> (63 - bits)) & ((1UL << bits) - 1)}\n{p}  bits 0-{62 - bits}  host byte offset  0x{entry & ((1UL << (63 - bits)) - 1):x}\n")
                : Inv($"{p}  qcow v1: the whole value is the host cluster's offset: 0x{entry:x}\n");
        }

        if ((entry & L2Entry.CompressedFlag) != 0)
        {
            int x = L2Entry.compressedOffsetBits(bits);
            var (host, length) = L2Entry.compressedStream(bits, entry);
            ulong sectors = (entry >> x) & ((1UL << (bits - 8)) - 1);
            return Inv($"{p}  bit 62     COMPRESSED       1  (x = 62 - (cluster_bits - 8) = {x})\n")
                + Inv($"{p}  bits {x}-61  extra sectors    {sectors}\n")
                + Inv($"{p}  bits 0-{x - 1}   host byte offset 0x{host:x}\n")
                + Inv($"{p}  stream length = (extra sectors + 1) × 512 - (offset & 511) = ({sectors} + 1) × 512 - {host & 511} = {length} bytes\n");
        }

        return Inv($"{p}  bit 63     COPIED           {Bit(entry, 63)}  {(Bit(entry, 63) == 1 ? "the cluster's refcount is 1: it is written in place" : "the cluster may be shared: it is copied before a write")}\n")
            + Inv($"{p}  bit 62     COMPRESSED       0\n")
            + Inv($"{p}  bits 9-55  host cluster     0x{entry & L2Entry.OffsetMask:x}\n")
            + Inv($"{p}  bit 0      ZERO             {Bit(entry, 0)}\n")
            + Inv($"{p}  reserved bits               0x{entry & L2Entry.StandardReservedMask:x}\n");
    }

    private static string Conclusion(Layer layer, long offset, QcowDevice q)
    {
        long inCluster = offset & (q.Layout.ClusterSize - 1);
        IBlockDevice? backing = q.Backing;
        return layer.Verdict switch
        {
            Verdict.Data => Inv($"=> data: the byte is at host offset 0x{layer.Mapping!.Value.Host:x} + 0x{inCluster:x} = 0x{layer.HostOffset:x} in {q.Path}"),
            Verdict.Compressed => Inv($"=> compressed: the stream at 0x{layer.Mapping!.Value.StreamHost:x} ({layer.Mapping.Value.StreamLength} bytes) inflates ({(q.Layout.CompressionType == 1 ? "zstd" : "deflate")}) to one cluster; the byte is at 0x{inCluster:x} in it"),
            Verdict.Zero => layer.Mapping!.Value.IsZeroAllocated
                ? Inv($"=> zero: the ZERO flag is set; the byte reads as 0 (host cluster 0x{layer.Mapping.Value.ZeroHost:x} stays allocated)")
                : "=> zero: the ZERO flag is set; the byte reads as 0, no host cluster",
            _ when backing is null => "=> unallocated, and no backing file: the byte reads as 0",
            _ when offset >= backing.Length => Inv($"=> unallocated, past the end of the backing file ({backing.Length} bytes): the byte reads as 0"),
            _ => Inv($"=> unallocated: the backing file {backing.Path} ({backing.FormatName}) answers, at depth {layer.Depth + 1}"),
        };
    }

    private static string Json(long offset, List<Layer> layers)
    {
        var chain = new JsonArray();
        foreach (Layer layer in layers)
        {
            var o = new JsonObject
            {
                ["depth"] = layer.Depth,
                ["filename"] = layer.Device.Path,
                ["format"] = layer.Device.FormatName,
            };
            if (layer.Device is QcowDevice q && layer.Trace is { } t)
            {
                o["cluster-bits"] = q.Layout.Geometry.ClusterBits;
                o["l2-bits"] = q.Layout.Geometry.L2Bits;
                o["l1-index"] = t.L1Index;
                o["l2-index"] = t.L2Index;
                o["offset-in-cluster"] = offset & (q.Layout.ClusterSize - 1);
                o["l1-entry"] = new JsonObject { ["host-offset"] = t.L1EntryAt, ["value"] = Inv($"0x{t.L1Entry:x16}"), ["l2-table"] = t.L2Table };
                if (t.L2Table != 0)
                {
                    o["l2-entry"] = new JsonObject { ["host-offset"] = t.L2EntryAt, ["value"] = Inv($"0x{t.L2Entry:x16}") };
                    if (q.Layout.ExtendedL2)
                    {
                        o["l2-entry"]!["subcluster-bitmap"] = Inv($"0x{t.L2Bitmap:x16}");
                        o["subcluster"] = (offset & (q.Layout.ClusterSize - 1)) / q.Layout.SubclusterSize;
                    }
                }
            }

            o["type"] = layer.Verdict.ToString().ToLowerInvariant();
            if (layer.HostOffset >= 0)
            {
                o["host-offset"] = layer.HostOffset;
            }

            if (layer.Mapping is { IsCompressed: true } c)
            {
                o["compressed-offset"] = c.StreamHost;
                o["compressed-length"] = c.StreamLength;
            }

            chain.Add(o);
        }

        var root = new JsonObject { ["guest-offset"] = offset, ["chain"] = chain };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static int Bit(ulong value, int bit) => (int)((value >> bit) & 1);

    private static string Indent(Layer layer) => new(' ', layer.Depth * 4);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
