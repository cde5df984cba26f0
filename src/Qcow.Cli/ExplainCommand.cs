// qcow explain FILE OFFSET: where a guest byte lives and why — the address arithmetic with this
// image's shifts and masks written out, the raw L1 and L2 entries and what each field says, and
// the host offset, or why there is none, down the backing chain (QcowImage.Explain's data, shown).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

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
        string path = opt.Positional[0];
        using QcowImage image = VerbOptions.Open(path, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.HeaderCache));
        long offset = Sizes.Parse(opt.Positional[1]);
        if (offset >= image.Length)
        {
            throw new UsageException($"offset {offset} is past the end of the image ({image.Length} bytes)");
        }

        QcowExplanation explained = image.Explain(offset);
        stdout.Write(json ? Json(explained) : Human(explained));
        return 0;
    }

    private static string Human(QcowExplanation explained)
    {
        long offset = explained.GuestOffset;
        var s = new StringBuilder();
        foreach (QcowLayerExplanation layer in explained.Layers)
        {
            string p = new(' ', layer.Depth * 4);
            if (layer.Format == QcowImageFormat.Raw)
            {
                s.Append(Inv($"{p}{layer.Path} is raw: guest offset = file offset, so the byte is at 0x{offset:x} in it.\n"));
                continue;
            }

            int bits = layer.ClusterBits;
            int l2Bits = layer.L2Bits;
            s.Append(Inv($"{p}{layer.Path}: {VerbOptions.Name(layer.Format)} version {layer.Version}, cluster_bits {bits} ({layer.ClusterSize} bytes per cluster), l2_bits {l2Bits} ({1 << l2Bits} entries per L2 table)\n"));
            s.Append(Inv($"{p}guest offset 0x{offset:x} ({offset})\n"));
            s.Append(Inv($"{p}  L1 index          = offset >> (cluster_bits + l2_bits) = 0x{offset:x} >> {bits + l2Bits} = {layer.L1Index}\n"));
            s.Append(Inv($"{p}  L2 index          = (offset >> cluster_bits) & (2^l2_bits - 1) = (0x{offset:x} >> {bits}) & 0x{(1 << l2Bits) - 1:x} = {layer.L2Index}\n"));
            s.Append(Inv($"{p}  offset in cluster = offset & (2^cluster_bits - 1) = 0x{offset:x} & 0x{layer.ClusterSize - 1:x} = 0x{layer.OffsetInCluster:x}\n"));
            s.Append(Inv($"{p}L1 entry {layer.L1Index}, at 0x{layer.L1TableOffset:x} + {layer.L1Index} × 8 = 0x{layer.L1EntryOffset:x}: 0x{layer.L1Entry:x16}\n"));
            s.Append(Fields(layer, layer.L1Fields, p, "L2 table"));
            if (layer.L2EntryOffset is not { } l2EntryAt)
            {
                s.Append($"{p}No L2 table: nothing in this range is allocated here.\n");
            }
            else
            {
                s.Append(Inv($"{p}L2 entry {layer.L2Index}, at 0x{layer.L2TableOffset:x} + {layer.L2Index} × {layer.L2EntryBytes} = 0x{l2EntryAt:x}: 0x{layer.L2Entry:x16}\n"));
                s.Append(Fields(layer, layer.L2Fields, p, "cluster"));
                if (layer.ExtendedL2)
                {
                    int index = layer.Subcluster;
                    s.Append(Inv($"{p}  subcluster bitmap (second word) 0x{layer.SubclusterBitmap:x16}; subcluster = offset in cluster / (cluster_size / 32) = {index}\n"));
                    s.Append(Inv($"{p}  bit {index} allocated = {Bit(layer.SubclusterAllocated)}, bit {32 + index} reads as zeros = {Bit(layer.SubclusterZero)}\n"));
                }
            }

            s.Append(p).Append(Conclusion(layer, offset)).Append('\n');
        }

        return s.ToString();
    }

    /// <summary>An entry's fields, one line each: bits, name, value, and what a flag means.</summary>
    private static string Fields(QcowLayerExplanation layer, IReadOnlyList<QcowEntryField> fields, string p, string what)
    {
        if (fields is [{ FirstBit: 0, LastBit: 63 } whole])
        {
            return Inv($"{p}  qcow v1: the whole value is the {(what == "cluster" ? "host cluster" : "L2 table")}'s offset: 0x{whole.Value:x}\n");
        }

        var s = new StringBuilder();
        foreach (QcowEntryField f in fields)
        {
            string value = f.Kind == QcowEntryFieldKind.Offset ? Inv($"0x{f.Value:x}") : Inv($"{f.Value}");
            string label = f.FirstBit < 0 ? "reserved bits"
                : f.FirstBit == f.LastBit ? Inv($"{$"bit {f.FirstBit}",-10} {f.Name}")
                : Inv($"{$"bits {f.FirstBit}-{f.LastBit}",-10} {f.Name}");
            s.Append(Inv($"{p}  {label,-27} {value}{Note(layer, fields, f, what)}\n"));
        }

        if (fields.FirstOrDefault(f => f.Name == "extra sectors") is { } sectors && layer.CompressedOffset is { } host)
        {
            s.Append(Inv($"{p}  stream length = (extra sectors + 1) × 512 - (offset & 511) = ({sectors.Value} + 1) × 512 - {host % 512} = {layer.CompressedLength} bytes\n"));
        }

        return s.ToString();
    }

    /// <summary>What a flag says, for the flags a newcomer needs explained.</summary>
    private static string Note(QcowLayerExplanation layer, IReadOnlyList<QcowEntryField> fields, QcowEntryField f, string what) => f.Name switch
    {
        "COPIED" when f.Value == 1 => what == "cluster"
            ? "  the cluster's refcount is 1: it is written in place"
            : "  the L2 table's refcount is 1: it is updated in place",
        "COPIED" => what == "cluster"
            ? "  the cluster may be shared: it is copied before a write"
            : "  the L2 table may be shared (a snapshot): it is copied before an update",
        "COMPRESSED" when f.Value == 1 && layer.Version > 1 && fields.FirstOrDefault(x => x.Name == "extra sectors") is { } sectors =>
            Inv($"  (x = 62 - (cluster_bits - 8) = {sectors.FirstBit})"),
        _ => "",
    };

    private static string Conclusion(QcowLayerExplanation layer, long offset)
    {
        long inCluster = layer.OffsetInCluster;
        return layer.Verdict switch
        {
            QcowExplainVerdict.Data => Inv($"=> data: the byte is at host offset 0x{layer.HostCluster:x} + 0x{inCluster:x} = 0x{layer.HostOffset:x} in {layer.Path}"),
            QcowExplainVerdict.Compressed => Inv($"=> compressed: the stream at 0x{layer.CompressedOffset:x} ({layer.CompressedLength} bytes) inflates ({(layer.CompressionType == QcowCompressionType.Zstd ? "zstd" : "deflate")}) to one cluster; the byte is at 0x{inCluster:x} in it"),
            QcowExplainVerdict.Zero => layer.HostCluster is { } kept
                ? Inv($"=> zero: the ZERO flag is set; the byte reads as 0 (host cluster 0x{kept:x} stays allocated)")
                : "=> zero: the ZERO flag is set; the byte reads as 0, no host cluster",
            _ when layer.BackingPath is null => "=> unallocated, and no backing file: the byte reads as 0",
            _ when offset >= layer.BackingLength =>
                Inv($"=> unallocated, past the end of the backing file ({layer.BackingLength} bytes): the byte reads as 0"),
            _ => Inv($"=> unallocated: the backing file {layer.BackingPath} ({VerbOptions.Name(layer.BackingFormat!.Value)}) answers, at depth {layer.Depth + 1}"),
        };
    }

    private static string Json(QcowExplanation explained)
    {
        var chain = new JsonArray();
        foreach (QcowLayerExplanation layer in explained.Layers)
        {
            var o = new JsonObject
            {
                ["depth"] = layer.Depth,
                ["filename"] = layer.Path,
                ["format"] = VerbOptions.Name(layer.Format),
            };
            if (layer.Format != QcowImageFormat.Raw)
            {
                o["cluster-bits"] = layer.ClusterBits;
                o["l2-bits"] = layer.L2Bits;
                o["l1-index"] = layer.L1Index;
                o["l2-index"] = layer.L2Index;
                o["offset-in-cluster"] = layer.OffsetInCluster;
                o["l1-entry"] = new JsonObject { ["host-offset"] = layer.L1EntryOffset, ["value"] = Inv($"0x{layer.L1Entry:x16}"), ["l2-table"] = layer.L2TableOffset };
                if (layer.L2EntryOffset is { } at)
                {
                    o["l2-entry"] = new JsonObject { ["host-offset"] = at, ["value"] = Inv($"0x{layer.L2Entry:x16}") };
                    if (layer.ExtendedL2)
                    {
                        o["l2-entry"]!["subcluster-bitmap"] = Inv($"0x{layer.SubclusterBitmap:x16}");
                        o["subcluster"] = layer.Subcluster;
                    }
                }
            }

            o["type"] = layer.Verdict.ToString().ToLowerInvariant();
            if (layer.HostOffset is { } host)
            {
                o["host-offset"] = host;
            }

            if (layer.CompressedOffset is { } stream)
            {
                o["compressed-offset"] = stream;
                o["compressed-length"] = layer.CompressedLength;
            }

            chain.Add(o);
        }

        var root = new JsonObject { ["guest-offset"] = explained.GuestOffset, ["chain"] = chain };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static int Bit(bool value) => value ? 1 : 0;

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
