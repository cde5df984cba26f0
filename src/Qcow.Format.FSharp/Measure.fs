/// What a qcow2 image of a given virtual size costs on disk, as qemu-img measure computes it
/// (qcow2_calc_prealloc_size, qcow2_refcount_metadata_size): every table sized for a fully
/// allocated image, so "required" overestimates the metadata of a sparse one, as QEMU's does.
module internal Qcow.Format.Measure

/// The parts of a fully allocated image, in clusters and bytes.
type Costs =
    { ClusterSize: int64
      /// Data clusters: the virtual size rounded up to a cluster.
      DataBytes: int64
      /// L2 entries, rounded up to whole tables.
      L2Entries: int64
      L2EntryBytes: int64
      L2Tables: int64
      /// L1 entries, rounded up to whole clusters of entries.
      L1Entries: int64
      RefcountBlocks: int64
      RefcountTableClusters: int64 }

    member c.L2Bytes = c.L2Entries * c.L2EntryBytes
    member c.L1Bytes = c.L1Entries * 8L
    member c.RefcountBytes = (c.RefcountBlocks + c.RefcountTableClusters) * c.ClusterSize
    /// Header, L2 tables, L1 table, refcount structures.
    member c.MetadataBytes = c.ClusterSize + c.L2Bytes + c.L1Bytes + c.RefcountBytes
    /// qemu-img measure's "fully allocated size".
    member c.FullyAllocated = c.MetadataBytes + c.DataBytes

let private divRoundUp (n: int64) (d: int64) = (n + d - 1L) / d

let private roundUp (n: int64) (d: int64) = divRoundUp n d * d

/// Refcount blocks and table clusters that count `clusters` clusters and themselves: the fixed
/// point of blocks = ⌈(clusters + table + blocks) / refcounts per block⌉, table = ⌈blocks / entries per cluster⌉.
let refcountClusters (clusterSize: int64) (refcountOrder: int) (clusters: int64) =
    let blocksPerTableCluster = clusterSize / 8L
    let refcountsPerBlock = clusterSize * 8L / (1L <<< refcountOrder)

    let rec settle blocks table last =
        let blocks' = divRoundUp (clusters + table + blocks) refcountsPerBlock
        let table' = divRoundUp blocks' blocksPerTableCluster
        let n = clusters + blocks' + table'
        if n = last then struct (blocks', table') else settle blocks' table' n

    settle 0L 0L 0L

/// The costs of an image of `virtualSize` bytes.
let costs (virtualSize: int64) (clusterBits: int) (refcountOrder: int) (extendedL2: bool) =
    let cs = 1L <<< clusterBits
    let l2EntryBytes = if extendedL2 then 16L else 8L
    let data = roundUp virtualSize cs
    let l2Entries = roundUp (data / cs) (cs / l2EntryBytes)
    let l1Entries = roundUp (l2Entries * l2EntryBytes / cs) (cs / 8L)
    let tablesBytes = cs + l2Entries * l2EntryBytes + l1Entries * 8L
    let struct (blocks, table) = refcountClusters cs refcountOrder ((tablesBytes + data) / cs)

    { ClusterSize = cs
      DataBytes = data
      L2Entries = l2Entries
      L2EntryBytes = l2EntryBytes
      L2Tables = l2Entries * l2EntryBytes / cs
      L1Entries = l1Entries
      RefcountBlocks = blocks
      RefcountTableClusters = table }

/// qemu-img measure's "required size": the fully allocated size with only the data clusters
/// the source needs.
let required (c: Costs) (neededDataBytes: int64) = c.FullyAllocated - c.DataBytes + neededDataBytes

/// Whether the L1 table of such an image stays within QEMU's 32 MiB limit.
let fitsL1Limit (virtualSize: int64) (clusterBits: int) (extendedL2: bool) =
    let cs = 1L <<< clusterBits
    let l2EntryBytes = if extendedL2 then 16L else 8L
    divRoundUp (roundUp virtualSize cs / cs) (cs / l2EntryBytes) * 8L <= int64 Limits.MaxL1Bytes
