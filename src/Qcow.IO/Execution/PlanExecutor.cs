// Carries out plans: every step in order, data to the file, metadata to ImageMetadata. When each
// step becomes durable is its FlushLevel's to say (Allocation.Plan.fs), and ImageMetadata's flush
// makes the levels durable in that order: the one statement of ordering, which nothing here adds to.
using System;
using System.Collections.Generic;
using Microsoft.FSharp.Collections;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class PlanExecutor
{
    private static readonly byte[] s_zeroes = new byte[1 << Limits.MaxClusterBits];
    private readonly IStorage _storage;
    private readonly ImageMetadata _metadata;
    private readonly ClusterCodec _codec;
    private readonly IBlockDevice? _backing;
    private readonly byte[] _cluster;

    public PlanExecutor(IStorage storage, ImageMetadata metadata, ClusterCodec codec, IBlockDevice? backing, int clusterSize)
    {
        _storage = storage;
        _metadata = metadata;
        _codec = codec;
        _backing = backing;
        _cluster = new byte[clusterSize];
    }

    /// <summary>
    /// Runs a plan; <paramref name="payload"/> holds the request's bytes for its cluster. A write of
    /// those bytes with nothing to copy around them is not done here: its host offset is returned
    /// (ulong.MaxValue when there is none) so that the caller can join it with its neighbours into
    /// one write. The steps that depend on those bytes being on the file, the L2 entry that maps
    /// them and the releases of what it replaces, are returned too, for the caller to run once the
    /// write has succeeded: a write that fails then leaves the old mapping and, at most, a leaked
    /// cluster, as in QEMU. An L1 entry still runs at once: the next clusters of the same table
    /// are planned through it, and the table it links is valid without the deferred entry.
    /// </summary>
    public (ulong Host, List<Step>? AfterWrite) Execute(Plan plan, ReadOnlySpan<byte> payload)
    {
        ulong deferred = ulong.MaxValue;
        List<Step>? afterWrite = null;
        for (FSharpList<Step> steps = plan.Steps; !steps.IsEmpty; steps = steps.Tail)
        {
            if (steps.Head is Step.WriteData { Item: { Head.IsKeepExisting: true, Tail.IsKeepExisting: true, Payload.IsRequestBytes: true } write })
            {
                deferred = write.Host + (ulong)write.Start;
            }
            else if (deferred != ulong.MaxValue && steps.Head is Step.SetL2Entry or Step.Release)
            {
                (afterWrite ??= []).Add(steps.Head);
            }
            else
            {
                Run(steps.Head, payload);
            }
        }

        return (deferred, afterWrite);
    }

    /// <summary>Runs the steps a deferred write held back, once it is on the file.</summary>
    public void RunAfterWrite(List<Step>? steps)
    {
        if (steps == null)
        {
            return;
        }

        foreach (Step step in steps)
        {
            Run(step, default);
        }
    }

    private void Run(Step step, ReadOnlySpan<byte> payload)
    {
        switch (step)
        {
            case Step.CreateRefcountBlock s:
                _metadata.CreateRefcountBlock(s.Item);
                break;
            case Step.LinkRefcountBlock s:
                _metadata.LinkRefcountBlock(s.tableIndex, s.blockOffset);
                break;
            case Step.SetRefcount s:
                _metadata.SetRefcount(s.cluster, s.value);
                break;
            case Step.CreateL2Table s:
                _metadata.CreateL2Table(s.tableOffset, s.copyOf);
                break;
            case Step.WriteData s:
                WriteData(s.Item, payload);
                break;
            case Step.SetL2Entry s:
                _metadata.SetL2Entry(s.table, s.index, s.entry);
                break;
            case Step.SetL1Entry s:
                _metadata.SetL1Entry(s.l1Index, s.entry);
                break;
            case Step.CreateRefcountTable s:
                _metadata.CreateRefcountTable(s.tableOffset, s.clusters, s.entries);
                break;
            case Step.SwitchRefcountTable s:
                _metadata.SwitchRefcountTable(s.tableOffset, s.clusters);
                break;
            case Step.Release s:
                _metadata.Release(s.cluster, s.discarded);
                break;
        }
    }

    /// <summary>
    /// Writes a run's bytes: the request's, and around them the first and last clusters' bytes
    /// from where they came before, each of those clusters written whole with its part of the
    /// request.
    /// </summary>
    private void WriteData(DataWrite w, ReadOnlySpan<byte> payload)
    {
        ReadOnlySpan<byte> bytes = w.Payload.IsRequestBytes ? payload[..w.Length] : s_zeroes.AsSpan(0, w.Length);
        int cs = _cluster.Length;
        if (w.Clusters == 1)
        {
            ClusterFill fill = DataWriteModule.fillOf(w, 0);
            if (fill.IsKeepExisting)
            {
                _metadata.WriteData(w.Host + (ulong)w.Start, bytes);
            }
            else
            {
                WriteFilled(w, 0, fill, w.Start, bytes);
            }

            return;
        }

        // Request bytes [0, headEnd) go with the first cluster, [tailStart, Length) with the last.
        int headEnd = w.Head.IsKeepExisting ? 0 : cs - w.Start;
        int tailStart = w.Tail.IsKeepExisting ? w.Length : (int)(((long)(w.Clusters - 1) * cs) - w.Start);
        if (headEnd > 0)
        {
            WriteFilled(w, 0, w.Head, w.Start, bytes[..headEnd]);
        }

        if (tailStart > headEnd)
        {
            _metadata.WriteData(w.Host + (ulong)(w.Start + headEnd), bytes[headEnd..tailStart]);
        }

        if (tailStart < w.Length)
        {
            WriteFilled(w, w.Clusters - 1, w.Tail, 0, bytes[tailStart..]);
        }
    }

    /// <summary>Writes the run's cluster <paramref name="index"/> whole: <paramref name="part"/> at <paramref name="at"/>, the rest from <paramref name="fill"/>.</summary>
    private void WriteFilled(DataWrite w, int index, ClusterFill fill, int at, ReadOnlySpan<byte> part)
    {
        Span<byte> cluster = _cluster;
        ulong offset = (ulong)index * (ulong)cluster.Length;
        if (fill.IsFillFromBacking)
        {
            _backing!.Read((long)(w.Guest + offset), cluster);
        }
        else if (fill is ClusterFill.FillFromHost host)
        {
            cluster[_storage.Read((long)host.oldHost, cluster)..].Clear();
        }
        else if (fill is ClusterFill.FillFromCompressed compressed)
        {
            _codec.Inflate(compressed.streamHost, compressed.streamLength, cluster);
        }
        else
        {
            cluster.Clear();
        }

        part.CopyTo(cluster[at..]);
        _metadata.WriteData(w.Host + offset, cluster);
    }
}
