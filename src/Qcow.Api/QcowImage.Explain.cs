// Explaining a guest byte: the walk from L1 entry to host byte, layer by layer.
using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.FSharp.Core;
using Qcow.Format;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Where the guest byte at <paramref name="offset"/> lives and why: for each layer of the
    /// chain walked, the L1 and L2 entries that map it, where they lie, their fields, and the
    /// verdict; the walk goes down the backing chain while the layers leave the byte unallocated.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The offset is outside the disk.</exception>
    /// <exception cref="QcowFormatException">An entry on the way is invalid; the message names it and where it lies.</exception>
    public QcowExplanation Explain(long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(offset, Length);
        var layers = new List<QcowLayerExplanation>();
        for (IBlockDevice? layer = _device; layer != null; layer = (layer as QcowDevice)?.Backing)
        {
            QcowLayerExplanation explained = ExplainLayer(layer, offset, layers.Count);
            layers.Add(explained);
            if (explained.Verdict != QcowExplainVerdict.Unallocated || offset >= (explained.BackingLength ?? 0))
            {
                break;
            }
        }

        return new QcowExplanation { GuestOffset = offset, Layers = layers };
    }

    private static QcowLayerExplanation ExplainLayer(IBlockDevice device, long offset, int depth)
    {
        if (device is not QcowDevice q)
        {
            return new QcowLayerExplanation { Depth = depth, Path = device.Path, Format = QcowImageFormat.Raw, Verdict = QcowExplainVerdict.Data, HostOffset = offset };
        }

        ImageLayout layout = q.Layout;
        EntryTrace trace = q.Trace(offset);
        long inCluster = offset & (layout.ClusterSize - 1);
        int subcluster = (int)(inCluster / layout.SubclusterSize);
        var classified = layout.ExtendedL2
            ? L2Entry.subclusterMapping(layout.EntryFormat, trace.L2Entry, trace.L2Bitmap, subcluster)
            : L2Entry.classify(layout.EntryFormat, trace.L2Entry);
        if (classified.IsError)
        {
            FSharpValueOption<ulong> bitmap = layout.ExtendedL2 ? FSharpValueOption<ulong>.NewValueSome(trace.L2Bitmap) : FSharpValueOption<ulong>.ValueNone;
            throw FormatErrors.ToException(L2Entry.invalid((ulong)trace.L2EntryAt, (ulong)offset, trace.L2Entry, bitmap, classified.ErrorValue), q.Path);
        }

        L2Mapping m = classified.ResultValue;
        QcowExplainVerdict verdict = m.Tag switch
        {
            L2Mapping.Tags.Normal => QcowExplainVerdict.Data,
            L2Mapping.Tags.Compressed => QcowExplainVerdict.Compressed,
            L2Mapping.Tags.ZeroPlain or L2Mapping.Tags.ZeroAllocated => QcowExplainVerdict.Zero,
            _ => QcowExplainVerdict.Unallocated,
        };
        IBlockDevice? backing = q.Backing;
        return new QcowLayerExplanation
        {
            Depth = depth,
            Path = q.Path,
            Format = layout.Version == 1 ? QcowImageFormat.Qcow : QcowImageFormat.Qcow2,
            Version = layout.Version,
            ClusterBits = layout.Geometry.ClusterBits,
            L2Bits = layout.Geometry.L2Bits,
            ClusterSize = layout.ClusterSize,
            OffsetInCluster = inCluster,
            L1TableOffset = (long)layout.L1Offset,
            L1Index = trace.L1Index,
            L1EntryOffset = trace.L1EntryAt,
            L1Entry = trace.L1Entry,
            L1Fields = Fields(EntryFields.l1(layout.Version, trace.L1Entry)),
            L2TableOffset = (long)trace.L2Table,
            L2Index = trace.L2Index,
            L2EntryBytes = layout.Geometry.L2EntryBytes,
            L2EntryOffset = trace.L2Table == 0 ? null : trace.L2EntryAt,
            L2Entry = trace.L2Entry,
            L2Fields = trace.L2Table == 0 ? [] : Fields(EntryFields.l2(layout.EntryFormat, trace.L2Entry)),
            ExtendedL2 = layout.ExtendedL2,
            SubclusterSize = layout.SubclusterSize,
            Subcluster = subcluster,
            SubclusterBitmap = trace.L2Bitmap,
            SubclusterAllocated = ((trace.L2Bitmap >> subcluster) & 1) != 0,
            SubclusterZero = ((trace.L2Bitmap >> (32 + subcluster)) & 1) != 0,
            Verdict = verdict,
            HostOffset = m.IsNormal ? (long)m.Host + inCluster : null,
            HostCluster = m.IsNormal ? (long)m.Host : m.IsZeroAllocated ? (long)m.ZeroHost : null,
            CompressedOffset = m.IsCompressed ? (long)m.StreamHost : null,
            CompressedLength = m.IsCompressed ? m.StreamLength : null,
            CompressionType = layout.CompressionType == 1 ? QcowCompressionType.Zstd : QcowCompressionType.Zlib,
            BackingPath = backing?.Path,
            BackingFormat = backing is null ? null : FormatNames.Parse(backing.FormatName),
            BackingLength = backing?.Length,
        };
    }

    private static QcowEntryField[] Fields(Microsoft.FSharp.Collections.FSharpList<EntryField> fields) =>
        [.. fields.Select(f => new QcowEntryField(f.FirstBit, f.LastBit, f.Name, (QcowEntryFieldKind)(int)f.Kind, f.Value))];
}
