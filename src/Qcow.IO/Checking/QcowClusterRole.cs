// What a host cluster of an image holds, as qcow layout draws it.
namespace Qcow;

/// <summary>What a host cluster of a qcow2 image file holds.</summary>
public enum QcowClusterRole : byte
{
    /// <summary>Nothing: its refcount is 0.</summary>
    Free,
    /// <summary>The header and its extensions.</summary>
    Header,
    /// <summary>The active L1 table.</summary>
    L1Table,
    /// <summary>An L2 table the active L1 table names.</summary>
    L2Table,
    /// <summary>The refcount table.</summary>
    RefcountTable,
    /// <summary>A refcount block.</summary>
    RefcountBlock,
    /// <summary>The snapshot table.</summary>
    SnapshotTable,
    /// <summary>A snapshot's L1 table.</summary>
    SnapshotL1Table,
    /// <summary>An L2 table only snapshots name.</summary>
    SnapshotL2Table,
    /// <summary>Guest data.</summary>
    Data,
    /// <summary>Compressed guest data (one or more streams).</summary>
    CompressedData,
    /// <summary>Counted as in use, yet nothing refers to it.</summary>
    Leaked,
    /// <summary>A persistent dirty bitmap's directory, table or data.</summary>
    Bitmap,
}
