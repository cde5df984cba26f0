// The format facts of an open image, as qemu-img info reports them.
using System.Collections.Generic;

namespace Qcow;

/// <summary>What an image's header says.</summary>
public sealed class QcowInfo
{
    internal QcowInfo()
    {
    }

    /// <summary>"qcow2" or "qcow".</summary>
    public string Format { get; internal init; } = "";

    /// <summary>1, 2 or 3.</summary>
    public int Version { get; internal init; }

    /// <summary>"0.10" for version 2, "1.1" for version 3, empty for qcow v1.</summary>
    public string Compat { get; internal init; } = "";

    /// <summary>Virtual size in bytes.</summary>
    public long VirtualSize { get; internal init; }

    /// <summary>Cluster size in bytes.</summary>
    public int ClusterSize { get; internal init; }

    /// <summary>Refcount width in bits (0 for qcow v1, which has no refcounts).</summary>
    public int RefcountBits { get; internal init; }

    /// <summary>The lazy refcounts feature is set.</summary>
    public bool LazyRefcounts { get; internal init; }

    /// <summary>The image is marked corrupt.</summary>
    public bool Corrupt { get; internal init; }

    /// <summary>The image is marked dirty (refcounts may be stale).</summary>
    public bool Dirty { get; internal init; }

    /// <summary>Extended L2 entries (subclusters) are in use.</summary>
    public bool ExtendedL2 { get; internal init; }

    /// <summary>"zlib" or "zstd".</summary>
    public string CompressionType { get; internal init; } = "zlib";

    /// <summary>The backing file's name as stored; null for none.</summary>
    public string? BackingFile { get; internal init; }

    /// <summary>The backing file's path as Qcow resolves it; null for none.</summary>
    public string? FullBackingFile { get; internal init; }

    /// <summary>The backing format stored in the image; null if none is stored.</summary>
    public string? BackingFormat { get; internal init; }

    /// <summary>Number of internal snapshots.</summary>
    public int SnapshotCount { get; internal init; }

    /// <summary>Feature bits the image sets: incompatible, compatible, autoclear.</summary>
    public IReadOnlyList<ulong> FeatureBits { get; internal init; } = [];
}
