/// Allocation plans as data: what a guest write must allocate, copy and link, in the order it
/// must reach the disk (after QEMU's QCowL2Meta and its flush ordering).
namespace Qcow.Format

/// Where the bytes of a new data cluster that the request does not cover come from.
type internal ClusterFill =
    /// Nothing to copy: the cluster is written in place, or the request covers all of it.
    | KeepExisting
    | FillZeroes
    /// The backing chain's bytes at the same guest offsets.
    | FillFromBacking
    /// The cluster's old host copy (it is shared, so it is copied, not overwritten).
    | FillFromHost of oldHost: uint64
    /// The cluster's old compressed stream, inflated.
    | FillFromCompressed of streamHost: uint64 * streamLength: uint32

/// What the request puts into its part of the cluster.
type internal Payload =
    | RequestBytes
    | PayloadZeroes

/// A request's bytes reaching a run of consecutive host clusters, one per guest cluster, as
/// QEMU's QCowL2Meta describes an allocating write: the clusters in between are the request's
/// alone; the first cluster's bytes before the request (QEMU's cow_start) and the last
/// cluster's bytes after it (cow_end) come from where those clusters' data was before.
type internal DataWrite =
    { /// The first host cluster.
      Host: uint64
      /// The first guest cluster's first byte.
      Guest: uint64
      Clusters: int
      /// The request's first byte within the first cluster.
      Start: int
      /// The request's bytes from there, across the run.
      Length: int
      Payload: Payload
      /// Fills the first cluster before Start.
      Head: ClusterFill
      /// Fills the last cluster after the request ends.
      Tail: ClusterFill }

module internal DataWrite =
    /// Where the bytes of the run's cluster `index` that the request leaves alone come from
    /// (KeepExisting: the request covers it all, or it is written in place).
    let fillOf (w: DataWrite) (index: int) =
        if index = 0 && w.Head <> KeepExisting then w.Head
        elif index = w.Clusters - 1 then w.Tail
        else KeepExisting

/// A cluster that becomes a refcount block, born with the clusters
/// [FirstInUse, FirstInUse + InUseCount) at refcount 1 (itself among them when self-describing).
type internal NewRefcountBlock =
    { Offset: uint64
      TableIndex: uint64
      FirstInUse: uint64
      InUseCount: uint64 }

/// One step of a plan. Steps run in order; when each reaches the disk is its FlushLevel's to say.
type internal Step =
    | CreateRefcountBlock of NewRefcountBlock
    | LinkRefcountBlock of tableIndex: uint64 * blockOffset: uint64
    /// A free cluster's refcount becomes `value` (allocation).
    | SetRefcount of cluster: uint64 * value: uint64
    /// A cluster becomes an L2 table: zero-filled, or a copy of the table at `copyOf` (0 = none).
    | CreateL2Table of tableOffset: uint64 * copyOf: uint64
    | WriteData of DataWrite
    | SetL2Entry of table: uint64 * index: int * entry: uint64
    | SetL1Entry of l1Index: int * entry: uint64
    /// A new refcount table, filled with `entries`, at `clusters` clusters from `tableOffset`.
    | CreateRefcountTable of tableOffset: uint64 * clusters: uint32 * entries: uint64[]
    /// The header now names the new refcount table.
    | SwitchRefcountTable of tableOffset: uint64 * clusters: uint32
    /// A cluster loses one reference; at zero it is free. `discarded`: a discard (or a zero
    /// write that may unmap) freed it, so an open that passes discards down gives its space back
    /// to the file system, as QEMU's pass-discard-request does; a mapping replaced by a write does not.
    | Release of cluster: uint64 * discarded: bool

/// The one statement of write ordering, as QEMU's cache dependencies make it (fixed for every
/// plan): a step becomes durable only after every step of a lower level before it. The metadata
/// cache enforces it: a flush makes the levels durable one after another in this order (and
/// steps that write at once, a new refcount table and the header naming it, first make the
/// lower levels durable). So an L2 entry never names a cluster whose data or refcount could be
/// lost, an L1 entry never names an L2 table that could be, and a cluster is released only once
/// nothing durable refers to it.
type internal FlushLevel =
    /// Guest data, new L2 tables and refcount blocks (written at once), and refcounts.
    | DataAndRefcounts = 0
    /// Refcount table entries, a new refcount table, and the header fields naming it.
    | RefcountTable = 1
    | L2Tables = 2
    | L1Table = 3
    /// Clusters that lose their last reference become free.
    | Releases = 4

module internal FlushLevel =
    /// The levels in the order a flush makes them durable.
    let order =
        [| FlushLevel.DataAndRefcounts
           FlushLevel.RefcountTable
           FlushLevel.L2Tables
           FlushLevel.L1Table
           FlushLevel.Releases |]

    /// The level whose flush makes a step durable.
    let ofStep step =
        match step with
        | CreateRefcountBlock _
        | SetRefcount _
        | CreateL2Table _
        | WriteData _ -> FlushLevel.DataAndRefcounts
        | LinkRefcountBlock _
        | CreateRefcountTable _
        | SwitchRefcountTable _ -> FlushLevel.RefcountTable
        | SetL2Entry _ -> FlushLevel.L2Tables
        | SetL1Entry _ -> FlushLevel.L1Table
        | Release _ -> FlushLevel.Releases

/// A plan, the allocation hint after it, and how many of the request's clusters it carries out
/// (the rest need plans of their own).
type internal Plan =
    { Steps: Step list
      NextFreeCluster: uint64
      Clusters: int }

/// What the planner answers.
type internal PlanOutcome =
    | Planned of Plan
    /// The refcount block at this table index is not loaded: load it and ask again.
    /// The refcount block at this table index is not loaded: load it and ask again, searching
    /// for free clusters from `searchFrom` (RunRequest.SearchFrom), where this search got to.
    | NeedRefcountBlock of tableIndex: uint64 * searchFrom: uint64
    /// The refcount table is full: grow it and ask again.
    | NeedRefcountTableGrowth
    /// The plan cannot be made; the error says why.
    | Refused of FormatError

/// What the planner may know of refcounts: loaded blocks only.
[<Struct>]
type internal RefcountLookup =
    { Loaded: bool
      Value: uint64 }

/// A read-only view of the refcount structures the shell has in memory.
type internal IRefcountView =
    /// Entries in the refcount table.
    abstract TableEntries: uint64
    /// The block offset in table entry `index` (0 = no block).
    abstract BlockOffset: index: uint64 -> uint64
    /// A cluster's refcount, when its block is loaded.
    abstract Refcount: cluster: uint64 -> RefcountLookup
    /// True when the shell knows every cluster the block at `index` describes is in use, loaded
    /// or not, so that a search can pass it without loading it again.
    abstract BlockIsFull: index: uint64 -> bool

/// How new host space is found.
type internal AllocationSource =
    /// qcow2: the first clusters whose refcount is 0, from a hint, below a limit.
    | Refcounted of view: IRefcountView * firstFree: uint64 * limit: uint64
    /// qcow v1: the end of the file, rounded up to a cluster.
    | AppendOnly of fileEnd: uint64

/// A zero write's terms, as QEMU's write-zeroes request takes them.
type internal ZeroWrite =
    { /// The request may free what it zeroes (qemu-io write -z -u; QEMU's BDRV_REQ_MAY_UNMAP).
      MayUnmap: bool
      /// The part of the cluster the request leaves alone reads as zeros, through the backing
      /// chain, by block status (QEMU's is_zero). Only then is a partial cluster zeroed whole.
      RestReadsAsZeroes: bool }

/// What kind of write a cluster request is.
type internal WriteKind =
    | WriteBytes
    | WriteZeroes of ZeroWrite
    | DiscardCluster
    /// A whole cluster past a shrink's new end loses its mapping outright (QEMU's full discard:
    /// unallocated whatever the version, since nothing past the end is read).
    | DropCluster
    /// A whole cluster as a compressed stream of Length bytes, packed at `packAt` (after the
    /// previous stream) when it fits there; 0 starts a new cluster.
    | WriteCompressed of packAt: uint64
    /// A host cluster for a guest cluster nothing maps yet, its bytes left as the file holds them
    /// (metadata preallocation).
    | PreallocateCluster

/// A guest request's part under one L2 table: the clusters it touches from the first, with the
/// entries that map them today. One plan carries out a run of them (WriteBytes) or the first.
type internal RunRequest =
    { /// The first cluster's first guest byte.
      Guest: uint64
      L1Index: int
      L1Entry: uint64
      /// The first cluster's index in its L2 table.
      L2Index: int
      /// The current L2 entries of the clusters touched, in guest order; 0s when the L1 entry
      /// has no table.
      L2Entries: uint64[]
      /// The request's first byte within the first cluster.
      Start: int
      /// The request's bytes from there, across the clusters touched.
      Length: int
      Kind: WriteKind
      /// Where the search for free clusters resumes (0: at the allocation hint).
      SearchFrom: uint64 }

    /// The same request, its search for free clusters resuming at `cluster`.
    member r.ResumingAt(cluster: uint64) = { r with SearchFrom = cluster }

/// The facts of the image a plan depends on.
type internal PlanContext =
    { Geometry: Geometry
      Refcounts: RefcountGeometry
      Format: EntryFormat
      HasBacking: bool
      Source: AllocationSource }
