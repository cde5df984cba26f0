/// A pure interpreter of plans over an image held in memory as its tables and clusters, so that
/// properties can check what plans do without a file.
module internal Qcow.Format.Interpreter

open System

/// An image as values: tables keyed by host offset, refcounts by host cluster.
type ModelImage =
    { Geometry: Geometry
      Refcounts: RefcountGeometry
      Format: EntryFormat
      L1: Map<int, uint64>
      L2Tables: Map<uint64, Map<int, uint64>>
      RefcountTableEntries: uint64
      RefcountTableOffset: uint64
      Blocks: Map<uint64, uint64>
      ClusterRefcounts: Map<uint64, uint64>
      Data: Map<uint64, byte[]> }

/// Where bytes that a plan copies come from.
type Sources =
    { Payload: byte[]
      Backing: uint64 -> int -> byte[]
      Inflate: uint64 -> uint32 -> byte[] }

/// The model as the planner's view: every block is loaded.
let view (m: ModelImage) =
    { new IRefcountView with
        member _.TableEntries = m.RefcountTableEntries
        member _.BlockOffset i = Map.tryFind i m.Blocks |> Option.defaultValue 0UL
        member _.Refcount c =
            { Loaded = true
              Value = Map.tryFind c m.ClusterRefcounts |> Option.defaultValue 0UL }
        member _.BlockIsFull _ = false }

let private clusterBytes (m: ModelImage) host =
    match Map.tryFind host m.Data with
    | Some d -> Array.copy d
    | None -> Array.zeroCreate (int (Geometry.clusterSize m.Geometry))

let private adjust (m: ModelImage) cluster delta =
    let now = Map.tryFind cluster m.ClusterRefcounts |> Option.defaultValue 0UL
    { m with ClusterRefcounts = Map.add cluster (uint64 (int64 now + delta)) m.ClusterRefcounts }

let private writeData (m: ModelImage) (s: Sources) (w: DataWrite) =
    let cs = int (Geometry.clusterSize m.Geometry)
    let requestEnd = w.Start + w.Length

    let cluster (m: ModelImage) index =
        let host = w.Host + uint64 index * uint64 cs
        let guest = w.Guest + uint64 index * uint64 cs

        let bytes =
            match DataWrite.fillOf w index with
            | KeepExisting -> clusterBytes m host
            | FillZeroes -> Array.zeroCreate cs
            | FillFromBacking -> s.Backing guest cs
            | FillFromHost old -> clusterBytes m old
            | FillFromCompressed(stream, length) -> s.Inflate stream length

        // The request's bytes within this cluster.
        let first = max w.Start (index * cs)
        let stop = min requestEnd ((index + 1) * cs)

        match w.Payload with
        | RequestBytes -> Array.blit s.Payload (first - w.Start) bytes (first - index * cs) (stop - first)
        | PayloadZeroes -> Array.Clear(bytes, first - index * cs, stop - first)

        { m with Data = Map.add host bytes m.Data }

    List.fold cluster m [ 0 .. w.Clusters - 1 ]

/// Applies one step.
let apply (s: Sources) (m: ModelImage) (step: Step) =
    match step with
    | CreateRefcountBlock b ->
        [ b.FirstInUse .. b.FirstInUse + b.InUseCount - 1UL ]
        |> List.fold (fun m c -> { m with ClusterRefcounts = Map.add c 1UL m.ClusterRefcounts }) m
    | LinkRefcountBlock(index, offset) -> { m with Blocks = Map.add index offset m.Blocks }
    | SetRefcount(cluster, value) -> { m with ClusterRefcounts = Map.add cluster value m.ClusterRefcounts }
    | CreateL2Table(table, copyOf) ->
        let entries = Map.tryFind copyOf m.L2Tables |> Option.defaultValue Map.empty
        { m with L2Tables = Map.add table entries m.L2Tables }
    | WriteData w -> writeData m s w
    | SetL2Entry(table, index, entry) ->
        let t = Map.tryFind table m.L2Tables |> Option.defaultValue Map.empty
        { m with L2Tables = Map.add table (Map.add index entry t) m.L2Tables }
    | SetL1Entry(index, entry) -> { m with L1 = Map.add index entry m.L1 }
    | CreateRefcountTable(_, _, entries) ->
        let blocks =
            entries
            |> Array.mapi (fun i e -> uint64 i, e)
            |> Array.filter (fun (_, e) -> e <> 0UL)
            |> Map.ofArray

        { m with Blocks = blocks }
    | SwitchRefcountTable(offset, clusters) ->
        { m with
            RefcountTableOffset = offset
            RefcountTableEntries = Refcount.tableEntriesIn m.Refcounts (uint64 clusters) }
    | Release(cluster, _) -> adjust m cluster -1L

/// Applies a whole plan.
let run (s: Sources) (m: ModelImage) (plan: Plan) = List.fold (apply s) m plan.Steps

/// The L2 entry that maps a guest offset, if its table exists.
let l2EntryAt (m: ModelImage) (guest: uint64) =
    let a = Geometry.decompose m.Geometry (GuestOffset.Of guest)
    let l1 = Map.tryFind a.L1Index.L1 m.L1 |> Option.defaultValue 0UL
    let table = if m.Format.Version = 1 then l1 else (L1Entry.classify l1).L2TableOffset

    if table = 0UL then
        0UL
    else
        Map.tryFind table m.L2Tables
        |> Option.bind (Map.tryFind a.L2Index.L2)
        |> Option.defaultValue 0UL

/// Reads one guest cluster through the tables; unallocated clusters come from `backing`.
let readCluster (m: ModelImage) (s: Sources) (guest: uint64) =
    let cs = int (Geometry.clusterSize m.Geometry)

    match L2Entry.classify m.Format (l2EntryAt m guest) with
    | Ok(Normal(host, _)) -> clusterBytes m host
    | Ok(Compressed(host, length)) -> s.Inflate host length
    | Ok Unallocated -> s.Backing guest cs
    | Ok _
    | Error _ -> Array.zeroCreate cs

/// Every reference the tables hold, as QEMU's check counts them: cluster → references.
let references (m: ModelImage) =
    let cb = m.Geometry.ClusterBits

    let l2s =
        m.L1
        |> Map.toList
        |> List.choose (fun (_, e) ->
            let t = if m.Format.Version = 1 then e else (L1Entry.classify e).L2TableOffset
            if t = 0UL then None else Some t)

    let dataRefs =
        [ for t in l2s do
              for KeyValue(_, e) in Map.tryFind t m.L2Tables |> Option.defaultValue Map.empty do
                  match L2Entry.classify m.Format e with
                  | Ok(Normal(h, _))
                  | Ok(ZeroAllocated(h, _)) -> yield h >>> cb
                  | Ok(Compressed(h, l)) ->
                      let struct (a, b) = L2Entry.compressedClusters cb h l
                      yield! [ a..b ]
                  | _ -> () ]

    let tableRefs = l2s |> List.map (fun t -> t >>> cb)
    let blockRefs = m.Blocks |> Map.toList |> List.map (fun (_, b) -> b >>> cb)

    dataRefs @ tableRefs @ blockRefs |> List.countBy id |> Map.ofList
