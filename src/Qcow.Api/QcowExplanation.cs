// Where a guest byte lives and why: the tables walked, the raw entries and their fields, layer by
// layer down the backing chain, as data for qcow explain (or any other teacher) to show.
using System.Collections.Generic;

namespace Qcow;

/// <summary>What a layer of the chain says about the explained byte.</summary>
public enum QcowExplainVerdict
{
    /// <summary>Stored data: <see cref="QcowLayerExplanation.HostOffset"/> is where.</summary>
    Data,
    /// <summary>Inside a compressed stream.</summary>
    Compressed,
    /// <summary>Reads as zeros (a zero cluster or subcluster).</summary>
    Zero,
    /// <summary>Not allocated here: the backing file answers, or the byte reads as zeros without one.</summary>
    Unallocated,
}

/// <summary>How an entry field's value reads.</summary>
public enum QcowEntryFieldKind
{
    /// <summary>A flag: 0 or 1.</summary>
    Flag,
    /// <summary>A count, shifted down to bit 0.</summary>
    Count,
    /// <summary>An offset, kept where it lies in the entry (so that it is a byte offset).</summary>
    Offset,
}

/// <summary>One bit field of a table entry, named as the qcow2 specification names it.</summary>
/// <param name="FirstBit">The field's lowest bit; -1 for the reserved bits, which are scattered.</param>
/// <param name="LastBit">The field's highest bit; -1 for the reserved bits.</param>
/// <param name="Name">COPIED, COMPRESSED, ZERO, "host cluster", "extra sectors", "reserved", ….</param>
/// <param name="Kind">How <paramref name="Value"/> reads.</param>
/// <param name="Value">The field's value.</param>
public sealed record QcowEntryField(int FirstBit, int LastBit, string Name, QcowEntryFieldKind Kind, ulong Value);

/// <summary>The explanation of one guest byte: one entry per layer of the chain walked.</summary>
public sealed class QcowExplanation
{
    internal QcowExplanation()
    {
    }

    /// <summary>The explained guest offset.</summary>
    public long GuestOffset { get; internal init; }

    /// <summary>The layers walked, from the image itself (depth 0) down to the one that answered.</summary>
    public IReadOnlyList<QcowLayerExplanation> Layers { get; internal init; } = [];
}

/// <summary>What one layer's tables say about the explained byte (for raw layers, only the verdict and host offset).</summary>
public sealed class QcowLayerExplanation
{
    internal QcowLayerExplanation()
    {
    }

    /// <summary>0 for the image itself, 1 for its backing file, and so on.</summary>
    public int Depth { get; internal init; }

    /// <summary>The layer's file.</summary>
    public string Path { get; internal init; } = "";

    /// <summary>The layer's format.</summary>
    public QcowImageFormat Format { get; internal init; }

    /// <summary>1, 2 or 3 (0 for raw).</summary>
    public int Version { get; internal init; }

    /// <summary>log2 of the cluster size.</summary>
    public int ClusterBits { get; internal init; }

    /// <summary>log2 of the entries per L2 table.</summary>
    public int L2Bits { get; internal init; }

    /// <summary>Cluster size in bytes.</summary>
    public int ClusterSize { get; internal init; }

    /// <summary>The byte's offset in its cluster: offset &amp; (cluster_size − 1).</summary>
    public long OffsetInCluster { get; internal init; }

    /// <summary>Where the active L1 table lies.</summary>
    public long L1TableOffset { get; internal init; }

    /// <summary>offset &gt;&gt; (cluster_bits + l2_bits).</summary>
    public int L1Index { get; internal init; }

    /// <summary>Where the L1 entry lies in the file.</summary>
    public long L1EntryOffset { get; internal init; }

    /// <summary>The L1 entry's raw value.</summary>
    public ulong L1Entry { get; internal init; }

    /// <summary>The L1 entry's fields.</summary>
    public IReadOnlyList<QcowEntryField> L1Fields { get; internal init; } = [];

    /// <summary>The L2 table the L1 entry names; 0 when there is none.</summary>
    public long L2TableOffset { get; internal init; }

    /// <summary>(offset &gt;&gt; cluster_bits) &amp; (2^l2_bits − 1).</summary>
    public int L2Index { get; internal init; }

    /// <summary>Bytes per L2 entry: 8, or 16 with extended L2 entries.</summary>
    public int L2EntryBytes { get; internal init; }

    /// <summary>Where the L2 entry lies in the file; null without an L2 table.</summary>
    public long? L2EntryOffset { get; internal init; }

    /// <summary>The L2 entry's raw value (its first word); 0 without an L2 table.</summary>
    public ulong L2Entry { get; internal init; }

    /// <summary>The L2 entry's fields; empty without an L2 table.</summary>
    public IReadOnlyList<QcowEntryField> L2Fields { get; internal init; } = [];

    /// <summary>The image has extended L2 entries: the byte's subcluster decides.</summary>
    public bool ExtendedL2 { get; internal init; }

    /// <summary>Bytes per subcluster (the cluster size without extended L2 entries).</summary>
    public int SubclusterSize { get; internal init; }

    /// <summary>The byte's subcluster: offset in cluster / subcluster size.</summary>
    public int Subcluster { get; internal init; }

    /// <summary>An extended entry's second word: bit i allocates subcluster i, bit 32 + i makes it read as zeros.</summary>
    public ulong SubclusterBitmap { get; internal init; }

    /// <summary>The byte's subcluster is allocated.</summary>
    public bool SubclusterAllocated { get; internal init; }

    /// <summary>The byte's subcluster reads as zeros.</summary>
    public bool SubclusterZero { get; internal init; }

    /// <summary>The layer's verdict.</summary>
    public QcowExplainVerdict Verdict { get; internal init; }

    /// <summary>Where the byte lies in <see cref="Path"/> (data only).</summary>
    public long? HostOffset { get; internal init; }

    /// <summary>The host cluster the entry names: the data's cluster, or the cluster a zero entry keeps allocated.</summary>
    public long? HostCluster { get; internal init; }

    /// <summary>A compressed stream's host byte offset.</summary>
    public long? CompressedOffset { get; internal init; }

    /// <summary>A compressed stream's length in bytes, to the end of its last sector.</summary>
    public long? CompressedLength { get; internal init; }

    /// <summary>How the layer's compressed clusters are compressed.</summary>
    public QcowCompressionType CompressionType { get; internal init; }

    /// <summary>The backing file below this layer, if opened; null without one.</summary>
    public string? BackingPath { get; internal init; }

    /// <summary>The backing file's format.</summary>
    public QcowImageFormat? BackingFormat { get; internal init; }

    /// <summary>The backing file's virtual size.</summary>
    public long? BackingLength { get; internal init; }
}
