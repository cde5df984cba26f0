// qcow geometry SIZE: what a qcow2 image of that size costs, each figure with its formula; the
// totals are qemu-img measure's for a new, empty image of that size.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qcow.Cli;

internal static class GeometryCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "o", "", ["output"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one size");
        }

        Dictionary<string, string> o = CreateSpec.ParseOptions(opt.Values("o"));
        long size = Sizes.Parse(opt.Positional[0]);
        int clusterSize = o.TryGetValue("cluster_size", out string? cs) ? checked((int)Sizes.Parse(cs)) : 65536;
        int refcountBits = o.TryGetValue("refcount_bits", out string? rb) ? int.Parse(rb, CultureInfo.InvariantCulture) : 16;
        bool extendedL2 = o.GetValueOrDefault("extended_l2", "off") is "on" or "true";
        QcowGeometry g;
        try
        {
            g = QcowGeometry.Of(size, clusterSize, refcountBits, extendedL2);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        stdout.Write(VerbOptions.Json(opt) ? Json(g) : Human(g));
        return 0;
    }

    private static string Human(QcowGeometry c)
    {
        long size = c.VirtualSize;
        int bits = c.ClusterBits;
        int refcountBits = c.RefcountBits;
        long cs = c.ClusterSize;
        long perTable = c.EntriesPerL2Table;
        long perBlock = c.RefcountsPerBlock;
        long dataClusters = c.DataClusters;
        long usedTables = (dataClusters + perTable - 1) / perTable;
        long clustersCounted = (c.MetadataBytes - c.RefcountBytes + c.DataBytes) / cs;
        var s = new StringBuilder();
        void Line(FormattableString text) => s.Append(text.ToString(CultureInfo.InvariantCulture)).Append('\n');
        Line($"qcow2 image of {size} bytes: cluster_size {cs} (cluster_bits {bits}), refcount_bits {refcountBits}, {c.L2EntryBytes}-byte L2 entries");
        Line($"  data clusters        = ceil(size / cluster_size) = ceil({size} / {cs}) = {dataClusters}");
        Line($"  entries per L2 table = cluster_size / {c.L2EntryBytes} = {perTable}");
        Line($"  guest bytes per L1 entry = cluster_size x entries per L2 table = {cs} x {perTable} = {cs * perTable}");
        Line($"  L2 tables            = ceil(data clusters / entries per L2 table) = ceil({dataClusters} / {perTable}) = {usedTables}  ({c.L2Bytes} bytes)");
        Line($"  L1 entries           = L2 tables, rounded up to whole clusters of 8-byte entries = {usedTables} -> {c.L1Entries}  ({c.L1Bytes} bytes)");
        Line($"  refcounts per block  = cluster_size x 8 / refcount_bits = {cs} x 8 / {refcountBits} = {perBlock}");
        Line($"  refcount blocks      = ceil((clusters + blocks + table) / {perBlock}), at its fixed point for {clustersCounted} clusters = {c.RefcountBlocks}");
        Line($"  refcount table       = ceil(blocks / (cluster_size / 8)) = ceil({c.RefcountBlocks} / {cs / 8}) = {c.RefcountTableClusters} cluster(s)");
        Line($"  metadata             = header + L2 + L1 + refcounts = {cs} + {c.L2Bytes} + {c.L1Bytes} + {c.RefcountBytes} = {c.MetadataBytes} bytes ({100.0 * c.MetadataBytes / Math.Max(1, c.DataBytes):F3}% of the data)");
        Line($"  fully allocated size = metadata + data = {c.MetadataBytes} + {c.DataBytes} = {c.FullyAllocated}  (qemu-img measure)");
        Line($"  required size        = metadata, with no data = {c.Required}  (qemu-img measure of an empty image)");
        return s.ToString();
    }

    private static string Json(QcowGeometry c) =>
        new JsonObject
        {
            ["virtual-size"] = c.VirtualSize,
            ["cluster-size"] = c.ClusterSize,
            ["refcount-bits"] = c.RefcountBits,
            ["l2-entry-bytes"] = c.L2EntryBytes,
            ["data-clusters"] = c.DataClusters,
            ["l2-tables"] = c.L2Tables,
            ["l2-bytes"] = c.L2Bytes,
            ["l1-entries"] = c.L1Entries,
            ["l1-bytes"] = c.L1Bytes,
            ["refcount-blocks"] = c.RefcountBlocks,
            ["refcount-table-clusters"] = c.RefcountTableClusters,
            ["metadata-bytes"] = c.MetadataBytes,
            ["fully-allocated"] = c.FullyAllocated,
            ["required"] = c.Required,
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
}
