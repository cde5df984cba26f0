/// The planner: a pure function from the image's tables and one cluster's request to the plan
/// that carries it out. It decides; the shell only executes.
module internal Qcow.Format.Planner

/// A plan being drawn up: steps so far (newest first) and what they allocated.
type private Draft =
    { Steps: Step list
      Counts: Map<uint64, uint64>
      Blocks: Map<uint64, uint64>
      Hint: uint64
      FileEnd: uint64 }

let private clusterSize (ctx: PlanContext) = Geometry.clusterSize ctx.Geometry

let private l1MappingIn (format: EntryFormat) (entry: uint64) =
    if format.Version = 1 then
        { L2TableOffset = entry; IsCopied = true }
    else
        L1Entry.classify entry

let private l1Mapping (ctx: PlanContext) (entry: uint64) = l1MappingIn ctx.Format entry

/// The rule for writing in place: a data cluster this image alone owns (COPIED in its L2 entry
/// and in the L1 entry of its table; qcow v1 shares nothing) takes the bytes where it lies, with
/// no plan. Returns that host cluster.
let inPlaceHost (format: EntryFormat) (l1Entry: uint64) (mapping: L2Mapping) =
    match mapping with
    | Normal(host, true) when (l1MappingIn format l1Entry).IsCopied -> ValueSome host
    | _ -> ValueNone

let private l1EntryFor (ctx: PlanContext) (table: uint64) =
    if ctx.Format.Version = 1 then table else L1Entry.ofMapping { L2TableOffset = table; IsCopied = true }

let private blockOf (view: IRefcountView) draft index =
    match Map.tryFind index draft.Blocks with
    | Some b -> b
    | None -> view.BlockOffset index

/// The first free cluster at or after `cluster` and below `limit`: refcount 0 in a loaded block,
/// or no block yet.
let rec private findFree (ctx: PlanContext) (view: IRefcountView) (limit: uint64) draft (cluster: uint64) =
    let index = Refcount.tableIndex ctx.Refcounts (HostCluster.Of cluster)

    if (cluster <<< ctx.Geometry.ClusterBits) >= Limits.MaxHostOffset then
        Error(Refused(Inconsistent(Structure.RefcountTable, 0UL, "no free host cluster below 2^56")))
    elif cluster >= limit then
        Error(Refused(Inconsistent(Structure.RefcountTable, 48UL, "the refcounts claim every cluster in use up to far past the end of the file")))
    elif index >= view.TableEntries then
        Error NeedRefcountTableGrowth
    else
        match Map.tryFind cluster draft.Counts with
        | Some 0UL -> Ok cluster
        | Some _ -> findFree ctx view limit draft (cluster + 1UL)
        | None when Map.containsKey index draft.Blocks || blockOf view draft index = 0UL -> Ok cluster
        | None when view.BlockIsFull index ->
            findFree ctx view limit draft (Refcount.firstClusterOfBlock ctx.Refcounts (index + 1UL)).Cluster
        | None ->
            let r = view.Refcount cluster

            if not r.Loaded then Error(NeedRefcountBlock(index, 0UL))
            elif r.Value = 0UL then Ok cluster
            else findFree ctx view limit draft (cluster + 1UL)

/// Allocates one cluster (or, for qcow v1, `bytes` at the end of the file). A cluster that lands
/// where no refcount block exists becomes that range's block, describing itself; allocation then
/// goes on past it, as QEMU's alloc_refcount_block does.
let rec private allocate (ctx: PlanContext) draft (bytes: uint64) =
    match ctx.Source with
    | AppendOnly _ ->
        let at = Geometry.alignUp ctx.Geometry draft.FileEnd
        Ok(at, { draft with FileEnd = at + bytes })
    | Refcounted(view, _, limit) ->
        match findFree ctx view limit draft draft.Hint with
        | Error e -> Error e
        | Ok cluster ->
            let index = Refcount.tableIndex ctx.Refcounts (HostCluster.Of cluster)
            let offset = cluster <<< ctx.Geometry.ClusterBits

            if blockOf view draft index = 0UL then
                let block =
                    { Offset = offset
                      TableIndex = index
                      FirstInUse = cluster
                      InUseCount = 1UL }

                allocate
                    ctx
                    { draft with
                        Steps = LinkRefcountBlock(index, offset) :: CreateRefcountBlock block :: draft.Steps
                        Blocks = Map.add index offset draft.Blocks
                        Counts = Map.add cluster 1UL draft.Counts
                        Hint = cluster + 1UL }
                    bytes
            else
                Ok(
                    offset,
                    { draft with
                        Steps = SetRefcount(cluster, 1UL) :: draft.Steps
                        Counts = Map.add cluster 1UL draft.Counts
                        Hint = cluster + 1UL }
                )

/// Clusters whose reference the old mapping held, released once the new mapping is durable
/// (`discarded`: by a discard, rather than replaced by a write).
let private releasesOf (ctx: PlanContext) discarded (mapping: L2Mapping) =
    match ctx.Source, mapping with
    | AppendOnly _, _ -> []
    | _, Normal(host, _)
    | _, ZeroAllocated(host, _) -> [ Release(host >>> ctx.Geometry.ClusterBits, discarded) ]
    | _, Compressed(host, length) ->
        let struct (first, last) = L2Entry.compressedClusters ctx.Geometry.ClusterBits host length
        [ for c in first..last -> Release(c, discarded) ]
    | _ -> []

/// A table the request may change: the L2 table itself when only this L1 entry owns it;
/// otherwise a new one (zeroed, or a copy of a shared one), linked once it is durable.
let private writableTable (ctx: PlanContext) (req: RunRequest) (l1: L1Mapping) draft =
    if l1.L2TableOffset <> 0UL && l1.IsCopied then
        Ok(l1.L2TableOffset, draft, [], [])
    else
        match allocate ctx draft (uint64 (Geometry.l2TableBytes ctx.Geometry)) with
        | Error e -> Error e
        | Ok(table, draft) ->
            let draft = { draft with Steps = CreateL2Table(table, l1.L2TableOffset) :: draft.Steps }
            let link = [ SetL1Entry(req.L1Index, l1EntryFor ctx table) ]

            let release =
                match ctx.Source with
                | Refcounted _ when l1.L2TableOffset <> 0UL -> [ Release(l1.L2TableOffset >>> ctx.Geometry.ClusterBits, false) ]
                | _ -> []

            Ok(table, draft, link, release)

/// The plan drawn up so far, carrying out `clusters` of the request's clusters.
let private finish (ctx: PlanContext) draft (clusters: int) (after: Step list) =
    let hint =
        match ctx.Source with
        | Refcounted _ -> draft.Hint
        | AppendOnly _ -> draft.FileEnd

    Planned
        { Steps = List.rev draft.Steps @ after
          NextFreeCluster = hint
          Clusters = clusters }

/// Points L2 entries (by index in the table) at new mappings: the table, the entries, the L1
/// link, and releases of what the entries held (each made durable after the one before by its
/// flush level).
let private linkInto (ctx: PlanContext) (table, draft, link, tableRelease) (before: Step list) (mappings: (int * L2Mapping) list) (released: Step list) =
    let entries = [ for index, mapping in mappings -> SetL2Entry(table, index, L2Entry.ofMapping ctx.Format mapping) ]
    finish ctx draft (max 1 mappings.Length) (before @ entries @ link @ released @ tableRelease)

let private relink (ctx: PlanContext) (req: RunRequest) l1 draft (before: Step list) (mapping: L2Mapping) (released: Step list) =
    match writableTable ctx req l1 draft with
    | Error e -> e
    | Ok table -> linkInto ctx table before [ req.L2Index, mapping ] released

/// Where the bytes of a new cluster that the request leaves alone come from: what the mapping
/// it replaces reads as.
let private fillFrom (ctx: PlanContext) (mapping: L2Mapping) =
    match mapping with
    | Unallocated -> if ctx.HasBacking then FillFromBacking else FillZeroes
    | ZeroPlain
    | ZeroAllocated _ -> FillZeroes
    | Normal(old, _) -> FillFromHost old
    | Compressed(old, length) -> FillFromCompressed(old, length)

/// Whether a write of bytes needs a new host cluster where this mapping is: anything but a
/// cluster written in place or a preallocated zero cluster this image owns (QEMU's
/// cluster_needs_new_alloc).
let private needsNewCluster (ctx: PlanContext) (req: RunRequest) (l1: L1Mapping) (mapping: L2Mapping) =
    match inPlaceHost ctx.Format req.L1Entry mapping, mapping with
    | ValueSome _, _ -> false
    | ValueNone, ZeroAllocated(_, true) when l1.IsCopied -> false
    | _ -> true

/// Moves the allocation hint to the first run of `clusters` free clusters from `from` on, as
/// QEMU's alloc_clusters_noref finds it, so that a write's data lies contiguous on the host (a
/// smaller hole is left for later, smaller allocations). Where no such run fits below the limit,
/// as much of one as there is. When a refcount block must be loaded first, the outcome names the
/// candidate run's start, where the search resumes: restarting from the hint could load more
/// blocks than the cache holds, for ever.
let private placeRun (ctx: PlanContext) draft (clusters: uint64) (from: uint64) =
    match ctx.Source with
    | AppendOnly _ -> Ok draft
    | Refcounted _ when clusters < 2UL -> Ok draft
    | Refcounted(view, _, limit) ->
        let rec search start =
            match findFree ctx view limit draft start with
            | Ok first -> extend first (first + 1UL)
            | Error(NeedRefcountBlock(index, _)) -> Error(NeedRefcountBlock(index, start))
            | Error e -> Error e

        and extend first next =
            if next = first + clusters then
                Ok { draft with Hint = first }
            else
                match findFree ctx view limit draft next with
                | Ok free when free = next -> extend first (next + 1UL)
                | Ok free -> search free
                | Error(NeedRefcountBlock(index, _)) -> Error(NeedRefcountBlock(index, first))
                | Error _ -> Ok { draft with Hint = first }

        search (max draft.Hint from)

/// Allocates up to `count` clusters one after another from the hint while they lie contiguous
/// on the host (a refcount block born among them ends the run): the first host cluster, how many
/// there are (at least one), and the draft after them.
let private allocateRun (ctx: PlanContext) draft (count: int) =
    let cs = clusterSize ctx

    let rec take first taken draft =
        if taken = count then
            Ok(first, taken, draft)
        else
            match allocate ctx draft cs with
            | Ok(host, next) when taken = 0 -> take host 1 next
            | Ok(host, next) when host = first + uint64 taken * cs -> take first (taken + 1) next
            | Ok _ -> Ok(first, taken, draft)
            | Error e when taken = 0 -> Error e
            | Error _ -> Ok(first, taken, draft)

    take 0UL 0 draft

/// New clusters for a run of guest clusters that need them (QEMU's handle_alloc): the L2 table
/// first, then the clusters, contiguous on the host, then the data, whose first and last
/// clusters are filled around the request from what they read as before; then the entries and
/// the releases of what they held.
let private planRun (ctx: PlanContext) (req: RunRequest) (l1: L1Mapping) (mappings: L2Mapping[]) payload draft =
    let cs = clusterSize ctx

    match writableTable ctx req l1 draft with
    | Error e -> e
    | Ok(table, draft, link, tableRelease) ->
        match placeRun ctx draft (uint64 mappings.Length) req.SearchFrom with
        | Error e -> e
        | Ok draft ->
            match allocateRun ctx draft mappings.Length with
            | Error e -> e
            | Ok(host, count, draft) ->
                let runBytes = int64 count * int64 cs
                let length = min (int64 req.Length) (runBytes - int64 req.Start)
                let last = mappings[count - 1]

                let write =
                    WriteData
                        { Host = host
                          Guest = req.Guest
                          Clusters = count
                          Start = req.Start
                          Length = int length
                          Payload = payload
                          Head = if req.Start > 0 then fillFrom ctx mappings[0] else KeepExisting
                          Tail = if int64 req.Start + length < runBytes then fillFrom ctx last else KeepExisting }

                let entries = [ for i in 0 .. count - 1 -> req.L2Index + i, Normal(host + uint64 i * cs, true) ]
                let released = [ for i in 0 .. count - 1 do yield! releasesOf ctx false mappings[i] ]
                linkInto ctx (table, draft, link, tableRelease) [ write ] entries released

/// One cluster's bytes: in place, into its own preallocated zero cluster, or into a new cluster.
let private planData (ctx: PlanContext) (req: RunRequest) (l1: L1Mapping) (mapping: L2Mapping) payload draft =
    let whole = req.Start = 0 && req.Length = int (clusterSize ctx)
    let fill = if whole then KeepExisting else FillZeroes

    let inPlace host fill =
        WriteData
            { Host = host
              Guest = req.Guest
              Clusters = 1
              Start = req.Start
              Length = req.Length
              Payload = payload
              Head = fill
              Tail = fill }

    match inPlaceHost ctx.Format req.L1Entry mapping, mapping with
    | ValueSome host, _ -> finish ctx draft 1 [ inPlace host KeepExisting ]
    | ValueNone, ZeroAllocated(host, true) when l1.IsCopied ->
        relink ctx req l1 draft [ inPlace host fill ] (Normal(host, true)) []
    | ValueNone, _ -> planRun ctx req l1 [| mapping |] payload draft

/// A cluster's refcount as the plan leaves it so far, when known.
let private refcountNow (view: IRefcountView) draft (cluster: uint64) =
    match Map.tryFind cluster draft.Counts with
    | Some value -> Some value
    | None ->
        let r = view.Refcount cluster
        if r.Loaded then Some r.Value else None

/// One more reference to a cluster in use: a compressed stream packed into it.
let private reference draft cluster value =
    { draft with
        Steps = SetRefcount(cluster, value + 1UL) :: draft.Steps
        Counts = Map.add cluster (value + 1UL) draft.Counts }

/// Bytes for a compressed stream, as QEMU's qcow2_alloc_bytes finds them: right after the
/// previous stream when they fit in its cluster (which gains a reference), or run on into the
/// next cluster when that is the one allocated; otherwise from the start of a new cluster.
/// qcow v1 appends the stream at the end of the file.
let private allocateBytes (ctx: PlanContext) draft (packAt: uint64) (size: uint64) =
    let cs = clusterSize ctx
    let bits = ctx.Geometry.ClusterBits

    match ctx.Source with
    | AppendOnly _ ->
        let at = (draft.FileEnd + 511UL) &&& ~~~511UL
        Ok(at, { draft with FileEnd = at + size })
    | Refcounted(view, _, _) ->
        let refcountMax =
            if ctx.Refcounts.RefcountOrder = 6 then System.UInt64.MaxValue
            else (1UL <<< (1 <<< ctx.Refcounts.RefcountOrder)) - 1UL

        let current =
            if packAt = 0UL then
                Ok(0UL, 0UL)
            else
                match refcountNow view draft (packAt >>> bits) with
                | None -> Error(NeedRefcountBlock(Refcount.tableIndex ctx.Refcounts (HostCluster.Of(packAt >>> bits)), 0UL))
                | Some value when value = 0UL || value = refcountMax -> Ok(0UL, 0UL)
                | Some value -> Ok(packAt, value)

        match current with
        | Error e -> Error e
        | Ok(offset, value) when offset <> 0UL && cs - (offset &&& (cs - 1UL)) >= size ->
            Ok(offset, reference draft (offset >>> bits) value)
        | Ok(offset, value) ->
            match allocate ctx draft cs with
            | Error e -> Error e
            | Ok(fresh, draft) when offset <> 0UL && Geometry.alignUp ctx.Geometry offset = fresh ->
                Ok(offset, reference draft (offset >>> bits) value)
            | Ok(fresh, draft) -> Ok(fresh, draft)

/// Where the stream after one of `length` bytes at `host` may be packed (QEMU's
/// free_byte_offset): right after it, unless it ended on a cluster boundary (0: a new cluster).
let nextPackAt (g: Geometry) (host: uint64) (length: int) =
    let next = host + uint64 length
    if Geometry.isClusterAligned g next then 0UL else next

/// A compressed cluster goes only where nothing is allocated, as in QEMU.
let private planCompressed (ctx: PlanContext) req (l1: L1Mapping) mapping packAt draft =
    match mapping with
    | Unallocated
    | ZeroPlain ->
        match writableTable ctx req l1 draft with
        | Error e -> e
        | Ok(table, draft, link, tableRelease) ->
            match allocateBytes ctx draft packAt (uint64 req.Length) with
            | Error e -> e
            | Ok(host, draft) ->
                let write =
                    WriteData
                        { Host = host
                          Guest = req.Guest
                          Clusters = 1
                          Start = 0
                          Length = req.Length
                          Payload = RequestBytes
                          Head = KeepExisting
                          Tail = KeepExisting }

                linkInto ctx (table, draft, link, tableRelease) [ write ] [ req.L2Index, Compressed(host, uint32 req.Length) ] []
    | _ ->
        let at = l1.L2TableOffset + uint64 (req.L2Index * ctx.Geometry.L2EntryBytes)
        Refused(Inconsistent(Structure.L2Table, at, "a compressed write cannot overwrite an allocated cluster"))

/// Preallocation maps an unallocated cluster to a new host cluster and writes nothing: the table
/// first, then the cluster, as for any allocation. Anything already mapped stays as it is.
/// A host cluster for a guest cluster that has none; one that reads as zeros by its flag keeps
/// the flag (QEMU preallocates it as an allocated zero cluster).
let private planPreallocation (ctx: PlanContext) req (l1: L1Mapping) mapping draft =
    match mapping with
    | Unallocated
    | ZeroPlain ->
        match writableTable ctx req l1 draft with
        | Error e -> e
        | Ok(table, draft, link, tableRelease) ->
            match allocate ctx draft (clusterSize ctx) with
            | Error e -> e
            | Ok(host, draft) ->
                let mapped = if mapping = ZeroPlain then ZeroAllocated(host, true) else Normal(host, true)
                linkInto ctx (table, draft, link, tableRelease) [] [ req.L2Index, mapped ] []
    | _ -> finish ctx draft 1 []

/// A zero write as QEMU's qcow2 driver makes it. A cluster is zeroed whole when the request
/// covers it, or when the rest of it reads as zeros and nothing is stored there; anything else
/// is written with zeros, as QEMU's block layer falls back to when the driver cannot zero it.
/// Zeroing sets the ZERO flag (v3), keeping the cluster allocated unless the request may unmap
/// it (a compressed stream is always freed); v2 has no flag and discards instead, which only
/// reads as zeros without a backing file. qcow v1 always writes zeros.
let private planZeroes (ctx: PlanContext) req l1 mapping (zero: ZeroWrite) draft =
    let whole = req.Start = 0 && req.Length = int (clusterSize ctx)

    let storesNothing =
        match mapping with
        | Unallocated
        | ZeroPlain
        | ZeroAllocated _ -> true
        | _ -> false

    let zeroable = whole || (zero.RestReadsAsZeroes && storesNothing)

    match ctx.Format.Version, mapping with
    | 3, ZeroPlain when zeroable -> finish ctx draft 1 []
    | 3, ZeroAllocated _ when zeroable && not zero.MayUnmap -> finish ctx draft 1 []
    | 3, Normal(host, copied) when zeroable && not zero.MayUnmap -> relink ctx req l1 draft [] (ZeroAllocated(host, copied)) []
    | 3, _ when zeroable -> relink ctx req l1 draft [] ZeroPlain (releasesOf ctx zero.MayUnmap mapping)
    | 2, Unallocated when zeroable && not ctx.HasBacking -> finish ctx draft 1 []
    | 2, _ when zeroable && not ctx.HasBacking -> relink ctx req l1 draft [] Unallocated (releasesOf ctx zero.MayUnmap mapping)
    | _ -> planData ctx req l1 mapping PayloadZeroes draft

let private planDiscard (ctx: PlanContext) req l1 mapping draft =
    // v3 hides the backing file's data behind a ZERO entry. v2 can only drop the mapping, which
    // would expose the backing file's data: with one, QEMU leaves the cluster as it is.
    match ctx.Format.Version, mapping with
    | 1, _
    | _, ZeroPlain -> finish ctx draft 1 []
    | 2, _ when ctx.HasBacking -> finish ctx draft 1 []
    | _, Unallocated when not ctx.HasBacking -> finish ctx draft 1 []
    | 2, _ -> relink ctx req l1 draft [] Unallocated (releasesOf ctx true mapping)
    | _ -> relink ctx req l1 draft [] ZeroPlain (releasesOf ctx true mapping)

let private planDrop (ctx: PlanContext) req l1 mapping draft =
    match mapping with
    | Unallocated -> finish ctx draft 1 []
    | _ -> relink ctx req l1 draft [] Unallocated (releasesOf ctx true mapping)

/// A plan with no steps yet, allocating from the source's hint.
let private emptyDraft (ctx: PlanContext) =
    { Steps = []
      Counts = Map.empty
      Blocks = Map.empty
      Hint =
        match ctx.Source with
        | Refcounted(_, hint, _) -> hint
        | AppendOnly _ -> 0UL
      FileEnd =
        match ctx.Source with
        | AppendOnly fileEnd -> fileEnd
        | Refcounted _ -> 0UL }

/// Plans a request's first clusters under one L2 table: a write of bytes carries out the run of
/// clusters from the first that need new ones (or the first, written in place); zero writes,
/// discards, compressed writes and preallocation carry out the first cluster. Discards cover
/// whole clusters.
let plan (ctx: PlanContext) (req: RunRequest) : PlanOutcome =
    let draft = emptyDraft ctx

    let l1 = l1Mapping ctx req.L1Entry

    let mappingOf i =
        if l1.L2TableOffset = 0UL then Ok Unallocated else L2Entry.classify ctx.Format req.L2Entries[i]

    // The first cluster's part of the request, for the plans that carry out one cluster.
    let first = { req with Length = min req.Length (int (clusterSize ctx) - req.Start) }

    match mappingOf 0 with
    | Error problem ->
        let at = l1.L2TableOffset + uint64 (req.L2Index * ctx.Geometry.L2EntryBytes)
        Refused(Inconsistent(Structure.L2Table, at, sprintf "%A" problem))
    | Ok mapping ->
        match req.Kind with
        | WriteBytes when needsNewCluster ctx req l1 mapping ->
            let needs i =
                match mappingOf i with
                | Ok m -> needsNewCluster ctx req l1 m
                | Error _ -> false

            let rec runEnd i = if i < req.L2Entries.Length && needs i then runEnd (i + 1) else i
            let run = Array.init (runEnd 1) (fun i -> Result.defaultValue Unallocated (mappingOf i))
            planRun ctx req l1 run RequestBytes draft
        | WriteBytes -> planData ctx first l1 mapping RequestBytes draft
        | WriteZeroes zero -> planZeroes ctx first l1 mapping zero draft
        | DiscardCluster -> planDiscard ctx first l1 mapping draft
        | DropCluster -> planDrop ctx first l1 mapping draft
        | WriteCompressed packAt -> planCompressed ctx first l1 mapping packAt draft
        | PreallocateCluster -> planPreallocation ctx first l1 mapping draft

/// Host clusters for metadata the shell lays out itself (a persistent bitmap's data clusters,
/// its table, the bitmap directory), as QEMU's qcow2_alloc_clusters hands them out: up to
/// `count` one after another, found from `searchFrom` as a run of data clusters is, each at
/// refcount 1. Returns the first one's offset with the plan; the plan's Clusters says how many
/// lie in the run (a refcount block born among them ends it early).
let planClusters (ctx: PlanContext) (count: int) (searchFrom: uint64) : Result<uint64 * Plan, PlanOutcome> =
    match placeRun ctx (emptyDraft ctx) (uint64 count) searchFrom with
    | Error e -> Error e
    | Ok draft ->
        match allocateRun ctx draft count with
        | Error e -> Error e
        | Ok(host, taken, draft) ->
            match finish ctx draft taken [] with
            | Planned plan -> Ok(host, plan)
            | other -> Error other
