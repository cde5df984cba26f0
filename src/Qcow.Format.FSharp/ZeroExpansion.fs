/// Zero clusters expanded for a downgrade to version 2, which has no zero flag, as QEMU's
/// qcow2_expand_zero_clusters expands them, in the active L2 tables and every snapshot's: a
/// plain zero cluster becomes unallocated where no backing file can show through, and a new
/// cluster of zeros where one can; an allocated zero cluster keeps its host cluster, zeroed,
/// unless a table other than its own also names that cluster (a snapshot's data, which zeroing
/// in place would destroy), when it too gets a new cluster of zeros.
module internal Qcow.Format.ZeroExpansion

/// What one L2 entry needs.
type internal Expansion =
    | Unchanged
    | Unallocate
    /// Its host cluster is zeroed where it is, and the entry loses the zero flag.
    | ZeroInPlace of host: uint64
    | NewCluster

/// What an entry of an L2 table named by `tableReferences` L1 entries needs; `references`
/// counts every reference to a host cluster, across all tables.
let expansion (format: EntryFormat) (hasBacking: bool) (tableReferences: uint32) (references: uint64 -> uint32) (entry: uint64) =
    match L2Entry.clusterType format entry with
    | ClusterType.ZeroPlain -> if hasBacking then NewCluster else Unallocate
    | ClusterType.ZeroAllocated ->
        let host = entry &&& L2Entry.OffsetMask

        if references (host >>> format.ClusterBits) > tableReferences then NewCluster else ZeroInPlace host
    | _ -> Unchanged

/// The entry once its cluster holds zeros (`host`: the new cluster, for NewCluster): a normal
/// entry, COPIED when its table has one reference, as a cluster it alone names then has one.
let expanded (tableReferences: uint32) (entry: uint64) (need: Expansion) (host: uint64) =
    match need with
    | Unchanged -> entry
    | Unallocate -> 0UL
    | ZeroInPlace at -> Generation.withCopied tableReferences at
    | NewCluster -> Generation.withCopied tableReferences host
