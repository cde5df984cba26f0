/// Laws of the planner (Allocation.Planner.fs, Allocation.RefcountGrowth.fs), checked with the
/// pure interpreter: random writes, zero writes and discards against a byte-array model.
module Qcow.Properties.AllocationProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Format.Interpreter
open Qcow.Properties.Generators

type Op =
    | WriteOp of offset: int * length: int * seed: byte
    | ZeroOp of offset: int * length: int
    | DiscardOp of offset: int * length: int

type Case =
    { Version: int
      ClusterBits: int
      RefcountOrder: int
      Clusters: int
      HasBacking: bool
      Ops: Op list }

let private caseGen =
    gen {
        let! version = Gen.elements [ 2; 3 ]
        let! cb = Gen.elements [ 9; 10; 12 ]
        let! order = if version = 3 then Gen.choose (0, 6) else Gen.constant 4
        let! clusters = Gen.choose (8, 6000)
        let! backing = ArbMap.defaults |> ArbMap.generate<bool>
        let cs = 1 <<< cb
        let size = clusters * cs
        let op =
            gen {
                let! offset = Gen.choose (0, size - 1)
                let! length = Gen.frequency [ 3, Gen.choose (1, 3 * cs); 1, Gen.choose (1, 300 * cs) ]
                let length = min length (size - offset)
                let! seed = Gen.choose (1, 255)
                return! Gen.elements [ WriteOp(offset, length, byte seed); ZeroOp(offset, length); DiscardOp(offset, length) ]
            }
        let! ops = Gen.listOfLength 12 op
        return { Version = version; ClusterBits = cb; RefcountOrder = order; Clusters = clusters; HasBacking = backing; Ops = ops }
    }

let private backingByte (guest: uint64) = byte (guest / 7UL + 3UL)

let private initialModel (c: Case) =
    let options =
        { Create.defaults (uint64 (c.Clusters <<< c.ClusterBits)) with
            Version = c.Version
            ClusterBits = c.ClusterBits
            RefcountOrder = c.RefcountOrder }

    let image = Create.qcow2 options |> Result.defaultWith failwith
    let h = image.Header
    let rg = Header.refcountGeometry h
    let cs = Header.clusterSize h
    let used = Geometry.clustersFor (Header.geometry h) image.FileLength
    let blocks = (used + Refcount.entriesPerBlock rg - 1UL) / Refcount.entriesPerBlock rg

    { Geometry = Header.geometry h
      Refcounts = rg
      Format = Header.entryFormat h
      L1 = Map.empty
      L2Tables = Map.empty
      RefcountTableEntries = Refcount.tableEntriesIn rg (uint64 h.RefcountTableClusters)
      RefcountTableOffset = h.RefcountTableOffset
      Blocks = Map.ofList [ for i in 0UL .. blocks - 1UL -> i, (1UL + uint64 h.RefcountTableClusters + i) * cs ]
      ClusterRefcounts = Map.ofList [ for c in 0UL .. used - 1UL -> c, 1UL ]
      Data = Map.empty },
    h

/// A crash after any flush level (the steps of that level and the lower ones durable, the rest
/// lost) leaves every reference the durable tables hold on a cluster whose durable refcount is
/// not zero: no L1 entry names an L2 table, and no L2 entry a cluster, that could be lost or reused.
let private crashSafe (sources: Sources) (before: ModelImage) (plan: Plan) =
    FlushLevel.order
    |> Array.forall (fun last ->
        let durable =
            plan.Steps
            |> List.filter (fun step -> FlushLevel.ofStep step <= last)
            |> List.fold (Interpreter.apply sources) before

        references durable
        |> Map.forall (fun cluster _ -> (Map.tryFind cluster durable.ClusterRefcounts |> Option.defaultValue 0UL) > 0UL))

type private Run =
    { Model: ModelImage
      Hint: uint64
      Bytes: byte[]
      Failures: string list }

/// Plans and runs the request's first clusters under one L2 table (all the clusters it touches
/// there when `manyClusters`, else the first); returns the run and the bytes carried out.
let private runRequest (c: Case) (run: Run) (at: int) (length: int) kind (payload: byte[]) (manyClusters: bool) =
    let g = run.Model.Geometry
    let cs = int (Geometry.clusterSize g)
    let guest = uint64 at
    let a = Geometry.decompose g (GuestOffset.Of guest)
    let l1 = Map.tryFind a.L1Index.L1 run.Model.L1 |> Option.defaultValue 0UL
    let start = at % cs
    let first = at - start
    let tableBytes = cs * Geometry.l2Entries g
    let tableEnd = (at / tableBytes + 1) * tableBytes
    let touched = if manyClusters then (min (at + length) tableEnd - first + cs - 1) / cs else 1
    let length = if manyClusters then min length (tableEnd - at) else min length (cs - start)

    let req =
        { Guest = uint64 first
          L1Index = a.L1Index.L1
          L1Entry = l1
          L2Index = a.L2Index.L2
          L2Entries = Array.init touched (fun i -> l2EntryAt run.Model (uint64 (first + i * cs)))
          Start = start
          Length = length
          Kind = kind
          SearchFrom = 0UL }

    let sources =
        { Payload = payload
          Backing = fun at n -> Array.init n (fun i -> if c.HasBacking then backingByte (at + uint64 i) else 0uy)
          Inflate = fun _ _ -> failwith "no compressed clusters here" }

    let rec attempt (run: Run) (req: RunRequest) tries =
        let ctx =
            { Geometry = g
              Refcounts = run.Model.Refcounts
              Format = run.Model.Format
              HasBacking = c.HasBacking
              Source = Refcounted(view run.Model, run.Hint, UInt64.MaxValue) }

        match Planner.plan ctx req with
        | Planned plan ->
            let failures = if crashSafe sources run.Model plan then run.Failures else sprintf "a crash between flush levels leaves a dangling reference: %A" plan.Steps :: run.Failures
            let covered = min length (plan.Clusters * cs - start)
            { run with Model = Interpreter.run sources run.Model plan; Hint = plan.NextFreeCluster; Failures = failures }, covered
        | NeedRefcountTableGrowth when tries < 3 ->
            match RefcountGrowth.plan run.Model.Refcounts (view run.Model) run.Model.RefcountTableOffset (uint32 ((run.Model.RefcountTableEntries * 8UL) / uint64 cs)) with
            | Planned growth -> attempt { run with Model = Interpreter.run sources run.Model growth } req (tries + 1)
            | other -> { run with Failures = sprintf "growth failed: %A" other :: run.Failures }, length
        | other -> { run with Failures = sprintf "unexpected outcome %A" other :: run.Failures }, length

    attempt run req 0

let private apply (c: Case) (run: Run) (op: Op) =
    let cs = 1 <<< c.ClusterBits
    let offset, length, kind, seed =
        match op with
        | WriteOp(o, l, s) -> o, l, WriteBytes, s
        | ZeroOp(o, l) -> o, l, WriteZeroes { MayUnmap = (o + l) % 3 = 0; RestReadsAsZeroes = false }, 0uy
        | DiscardOp(o, l) -> o, l, DiscardCluster, 0uy

    let mutable run = run
    let mutable at = offset

    while at < offset + length do
        let start = at % cs
        let n = min (offset + length - at) (cs - start)

        // The rest of a partly zeroed cluster reads as zeros when the model's bytes there are zeros.
        let clusterKind =
            match kind with
            | WriteZeroes zero ->
                let first = at - start
                let rest = Seq.append (seq { first .. at - 1 }) (seq { at + n .. first + cs - 1 })
                WriteZeroes { zero with RestReadsAsZeroes = rest |> Seq.forall (fun i -> run.Bytes[i] = 0uy) }
            | other -> other

        match kind with
        | DiscardCluster when start <> 0 || n <> cs -> at <- at + n
        | WriteBytes ->
            let payload = Array.init (offset + length - at) (fun i -> seed + byte (at + i))
            let next, covered = runRequest c run at (offset + length - at) kind payload true
            run <- next
            Array.blit payload 0 run.Bytes at covered
            at <- at + covered
        | _ ->
            run <- fst (runRequest c run at n clusterKind (Array.zeroCreate n) false)

            match kind with
            | DiscardCluster when c.Version = 2 && c.HasBacking -> ()
            | _ -> Array.Clear(run.Bytes, at, n)

            at <- at + n

    run

/// Refcounts equal the references the tables hold, plus the fixed metadata.
let private consistent (h: Header) (m: ModelImage) =
    let cb = m.Geometry.ClusterBits
    let cs = Geometry.clusterSize m.Geometry
    let fixedClusters =
        [ 0UL ]
        @ [ for i in 0UL .. (m.RefcountTableEntries * 8UL + cs - 1UL) / cs - 1UL -> (m.RefcountTableOffset >>> cb) + i ]
        @ [ for i in 0UL .. Geometry.clustersFor m.Geometry (uint64 h.L1Size * 8UL) - 1UL -> (h.L1TableOffset >>> cb) + i ]
    let refs = references m |> fun r -> fixedClusters |> List.fold (fun r c -> Map.add c ((Map.tryFind c r |> Option.defaultValue 0) + 1) r) r
    let counted = m.ClusterRefcounts |> Map.filter (fun _ v -> v <> 0UL)
    let mismatches =
        Seq.append refs.Keys counted.Keys
        |> Seq.distinct
        |> Seq.filter (fun c -> uint64 (Map.tryFind c refs |> Option.defaultValue 0) <> (Map.tryFind c counted |> Option.defaultValue 0UL))
        |> Seq.truncate 5
        |> Seq.toList
    mismatches

[<Property(MaxTest = 60)>]
let ``plans keep refcounts equal to references, order their steps, and read back what was written`` () =
    Prop.forAll (Arb.fromGen caseGen) (fun c ->
        let model, h = initialModel c
        let size = c.Clusters <<< c.ClusterBits
        let bytes = Array.init size (fun i -> if c.HasBacking then backingByte (uint64 i) else 0uy)
        let run = c.Ops |> List.fold (apply c) { Model = model; Hint = 0UL; Bytes = bytes; Failures = [] }
        let cs = 1 <<< c.ClusterBits
        let sources =
            { Payload = [||]
              Backing = fun at n -> Array.init n (fun i -> if c.HasBacking then backingByte (at + uint64 i) else 0uy)
              Inflate = fun _ _ -> [||] }
        let readBack = Array.concat [ for k in 0 .. c.Clusters - 1 -> readCluster run.Model sources (uint64 (k * cs)) ]
        let mismatches = consistent h run.Model
        (Prop.label (sprintf "failures: %A" run.Failures) (List.isEmpty run.Failures))
        .&. Prop.label (sprintf "refcount mismatches at clusters %A" mismatches) (List.isEmpty mismatches)
        .&. Prop.label "read-back differs from the byte model" (readBack = run.Bytes))
