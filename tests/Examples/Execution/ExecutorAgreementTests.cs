// The executor and the pure interpreter agree on the same plans: plans the planner draws up from
// a real image's cached metadata are carried out by PlanExecutor on the file and by the
// interpreter on a model of the same image; after each flush the tables read back from the file
// (through the table walk) are the model's.
using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using Qcow.Examples.Oracle;
using Qcow.Format;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.Execution;

public sealed class ExecutorAgreementTests
{
    [Theory]
    [InlineData(1, 9, 4)]
    [InlineData(2, 12, 0)]
    [InlineData(3, 12, 6)]
    [InlineData(4, 16, 4)]
    [InlineData(5, 9, 1)]
    public void Executor_LeavesTheTablesTheInterpreterDoes_ForTheSamePlans(int seed, int clusterBits, int refcountOrder)
    {
        using var dir = new TempDir();
        string path = dir.File("x.qcow2");
        int cs = 1 << clusterBits;
        const int Clusters = 96;
        QcowImage.Create(path, new QcowCreateOptions { Size = (long)Clusters * cs, ClusterSize = cs, RefcountBits = 1 << refcountOrder }).Dispose();
        using FileStorage file = FileStorage.Open(path, writable: true);
        using QcowDevice device = QcowDevice.Open(new BorrowedStorage(file), new DeviceOptions(true, false, 1 << 20, NullLogger.Instance), (_, _) => null);
        ImageMetadata metadata = device.Metadata;
        ImageLayout layout = device.Layout;
        var executor = new PlanExecutor(file, metadata, new ClusterCodec(file, layout.CompressionType, cs), null, cs);
        Interpreter.ModelImage model = ModelOf(file, layout);
        var random = new Random(seed);
        for (int op = 0; op < 60; op++)
        {
            long guest = (long)random.Next(Clusters - 3) * cs;
            int start = random.Next(3) == 0 ? 0 : random.Next(cs);
            WriteKind kind = random.Next(4) switch
            {
                0 => WriteKind.NewWriteZeroes(new ZeroWrite(random.Next(2) == 0, false)),
                1 => WriteKind.DiscardCluster,
                _ => WriteKind.WriteBytes,
            };

            // Writes of bytes span up to three clusters (a run); the rest stay within one.
            int length = kind.IsWriteBytes ? random.Next(1, (3 * cs) - start + 1) : start == 0 && random.Next(2) == 0 ? cs : random.Next(1, cs - start + 1);
            if (kind.IsDiscardCluster)
            {
                (start, length) = (0, cs);
            }

            byte[] payload = new byte[length];
            random.NextBytes(payload);
            Plan plan = PlanFor(metadata, layout, guest, start, length, kind);
            model = Interpreter.run(new Interpreter.Sources(payload, FuncConvert.FromFunc<ulong, int, byte[]>((_, n) => new byte[n]), FuncConvert.FromFunc<ulong, uint, byte[]>((_, _) => throw new InvalidOperationException("no compressed clusters here"))), model, plan);
            (ulong host, List<Step>? afterWrite) = executor.Execute(plan, payload);
            if (host != ulong.MaxValue)
            {
                metadata.WriteData(host, payload.AsSpan(0, Math.Min(length, (plan.Clusters * cs) - start)));
            }

            executor.RunAfterWrite(afterWrite);
            metadata.FirstFreeCluster = plan.NextFreeCluster;
            metadata.FileEnd = Math.Max(metadata.FileEnd, plan.NextFreeCluster << clusterBits);
            metadata.Flush();

            Assert.Equal(Tables(model), Tables(ModelOf(file, layout)));
        }
    }

    /// <summary>The plan for a request from <paramref name="start"/> in the cluster at <paramref name="guest"/>, as the device draws it up (loading refcount blocks the planner asks for).</summary>
    private static Plan PlanFor(ImageMetadata metadata, ImageLayout layout, long guest, int start, int length, WriteKind kind)
    {
        int cs = layout.ClusterSize;
        int l1Index = GeometryModule.l1Index(layout.Geometry, (ulong)guest);
        int l2Index = GeometryModule.l2Index(layout.Geometry, (ulong)guest);
        ulong table = metadata.L2TableOffset(l1Index);
        int touched = Math.Min((start + length + cs - 1) / cs, GeometryModule.l2Entries(layout.Geometry) - l2Index);
        ulong[] entries = Enumerable.Range(0, touched).Select(i => table == 0 ? 0 : metadata.L2Entry(table, l2Index + i, l1Index)).ToArray();
        var request = new RunRequest((ulong)guest, l1Index, metadata.L1Entry(l1Index), l2Index, entries, start, Math.Min(length, (touched * cs) - start), kind, 0);
        while (true)
        {
            var context = new PlanContext(layout.Geometry, layout.Refcounts, layout.EntryFormat, false, AllocationSource.NewRefcounted(metadata, metadata.FirstFreeCluster, ulong.MaxValue));
            switch (Planner.plan(context, request))
            {
                case PlanOutcome.Planned planned:
                    return planned.Item;
                case PlanOutcome.NeedRefcountBlock need:
                    metadata.LoadRefcountBlock(need.tableIndex);
                    request = request.ResumingAt(need.searchFrom);
                    break;
                case var other:
                    throw new InvalidOperationException($"unexpected outcome {other}");
            }
        }
    }

    /// <summary>The image's tables as the interpreter models them, read from the file through the table walk.</summary>
    private static Interpreter.ModelImage ModelOf(IStorage file, ImageLayout layout)
    {
        Header header = QcowDevice.ReadHeader(file);
        var collector = new TableCollector();
        ImageWalk.Walk(file, header, WalkScope.Everything, collector);
        var stored = new StoredRefcounts(file, header);
        long clusters = (file.Length + layout.ClusterSize - 1) / layout.ClusterSize;
        var refcounts = new List<Tuple<ulong, ulong>>();
        for (ulong c = 0; c < (ulong)clusters; c++)
        {
            if (stored.Get(c) is { } value and not 0)
            {
                refcounts.Add(Tuple.Create(c, value));
            }
        }

        return new Interpreter.ModelImage(
            layout.Geometry,
            layout.Refcounts,
            layout.EntryFormat,
            MapModule.OfSeq(collector.L1.Select(e => Tuple.Create(e.Key, e.Value))),
            MapModule.OfSeq(collector.L2.Select(t => Tuple.Create(t.Key, MapModule.OfSeq(t.Value.Select(e => Tuple.Create(e.Key, e.Value)))))),
            Refcount.tableEntriesIn(layout.Refcounts, header.RefcountTableClusters),
            header.RefcountTableOffset,
            MapModule.OfSeq(collector.Blocks.Select(b => Tuple.Create(b.Key, b.Value))),
            MapModule.OfSeq(refcounts),
            MapModule.Empty<ulong, byte[]>());
    }

    /// <summary>What the comparison looks at: L1 entries, the entries of the L2 tables they name, refcount blocks, refcounts; zeros left out.</summary>
    private static string Tables(Interpreter.ModelImage m)
    {
        var lines = new List<string>();
        foreach ((int index, ulong entry) in m.L1.Where(e => e.Value != 0).Select(e => (e.Key, e.Value)))
        {
            ulong table = entry & L1Entry.OffsetMask;
            lines.Add($"L1[{index}] = {entry:x}");
            if (m.L2Tables.TryFind(table) is { } entries)
            {
                lines.AddRange(entries.Value.Where(e => e.Value != 0).Select(e => $"  L2 {table:x}[{e.Key}] = {e.Value:x}"));
            }
        }

        lines.AddRange(m.Blocks.Where(b => b.Value != 0).Select(b => $"block {b.Key} at {b.Value:x}"));
        lines.AddRange(m.ClusterRefcounts.Where(c => c.Value != 0).Select(c => $"refcount {c.Key} = {c.Value}"));
        return string.Join('\n', lines);
    }

    /// <summary>A visitor keeping the active L1 entries, the L2 entries and the refcount table's entries.</summary>
    private sealed class TableCollector : IWalkVisitor
    {
        public SortedDictionary<int, ulong> L1 { get; } = new();

        public SortedDictionary<ulong, SortedDictionary<int, ulong>> L2 { get; } = new();

        public SortedDictionary<ulong, ulong> Blocks { get; } = new();

        public void Visit(in Walked item)
        {
            switch (item.Item)
            {
                case WalkItem.L1Entry when item.Tree == 0:
                    L1[item.Index] = item.Entry;
                    break;
                case WalkItem.L2Entry when item.Tree == 0 && item.Entry != 0:
                    if (!L2.TryGetValue(item.Offset, out SortedDictionary<int, ulong>? table))
                    {
                        L2[item.Offset] = table = new SortedDictionary<int, ulong>();
                    }

                    table[item.Index] = item.Entry;
                    break;
                case WalkItem.RefcountTableEntry when item.Entry != 0:
                    Blocks[(ulong)item.Index] = item.Entry & ~Refcount.TableReservedMask;
                    break;
            }
        }
    }
}
