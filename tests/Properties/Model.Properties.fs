/// Model-based runs of the whole library: random write / zero / discard / read / flush / reopen
/// sequences against a byte-array model, over qcow v1, qcow2 v2 and v3, cluster sizes from
/// 512 B to 2 MiB, refcount widths 1, 16 and 64, with and without a backing file.
module Qcow.Properties.ModelProperties

open System
open System.IO
open FsCheck
open FsCheck.FSharp
open Qcow

type EngineOp =
    | Write of offset: int64 * length: int * seed: byte
    | Zero of offset: int64 * length: int
    | Discard of offset: int64 * length: int
    | Read of offset: int64 * length: int
    | Flush
    | Reopen

type Config =
    { Format: QcowImageFormat
      Compat: string
      ClusterSize: int
      RefcountBits: int
      WithBacking: bool }

    override c.ToString() =
        sprintf "%A compat=%s cluster=%d refcount=%d backing=%b" c.Format c.Compat c.ClusterSize c.RefcountBits c.WithBacking

let configs: obj[] seq =
    seq {
        for cs in [ 512; 4096; 65536; 2097152 ] do
            for rb in [ 1; 16; 64 ] do
                for backing in [ false; true ] do
                    yield { Format = QcowImageFormat.Qcow2; Compat = "1.1"; ClusterSize = cs; RefcountBits = rb; WithBacking = backing }
            for backing in [ false; true ] do
                yield { Format = QcowImageFormat.Qcow2; Compat = "0.10"; ClusterSize = cs; RefcountBits = 16; WithBacking = backing }
        for backing in [ false; true ] do
            yield { Format = QcowImageFormat.Qcow; Compat = ""; ClusterSize = 0; RefcountBits = 0; WithBacking = backing }
    }
    |> Seq.map (fun c -> [| box c |])

/// The cluster size the image really gets (qcow v1 picks its own, as qemu-img does).
let private effectiveClusterSize c =
    match c.Format with
    | QcowImageFormat.Qcow -> if c.WithBacking then 512 else 4096
    | _ -> c.ClusterSize

let private diskSize c = int64 (effectiveClusterSize c) * (if effectiveClusterSize c >= 65536 then 12L else 48L)

let private opGen (size: int64) (cs: int) =
    let range =
        gen {
            let! offset = Gen.choose (0, int (size - 1L)) |> Gen.map int64
            let! length = Gen.frequency [ 3, Gen.choose (1, 2 * cs); 1, Gen.choose (1, min (int size) (5 * cs)) ]
            return offset, int (min (int64 length) (size - offset))
        }

    Gen.frequency
        [ 5, gen {
              let! o, l = range
              let! s = Gen.choose (1, 255)
              return Write(o, l, byte s)
          }
          2, range |> Gen.map Zero
          2, range |> Gen.map Discard
          3, range |> Gen.map Read
          1, Gen.constant Flush
          1, Gen.constant Reopen ]

let private pattern (seed: byte) (offset: int64) (length: int) = Array.init length (fun i -> seed + byte ((offset + int64 i) % 251L))

let private backingByte (i: int64) = byte (i % 13L + 1L)

/// The create option for a configuration's compat ("" for qcow v1, which ignores it).
let private compatOf compat = if compat = "0.10" then QcowCompat.V0_10 else QcowCompat.V1_1

type private Session(dir: string, c: Config) =
    let path = Path.Combine(dir, "image")
    let size = diskSize c
    let cs = int64 (effectiveClusterSize c)
    let mutable image: QcowImage = null
    let model: byte[] = Array.init (int size) (fun i -> if c.WithBacking then backingByte (int64 i) else 0uy)

    member _.Start() =
        let backing =
            if c.WithBacking then
                let basePath = Path.Combine(dir, "base")
                use b = QcowImage.Create(basePath, QcowCreateOptions(Size = size, Format = c.Format, Compat = compatOf c.Compat))
                b.Write(0L, ReadOnlySpan(Array.init (int size) (fun i -> backingByte (int64 i))))
                "base"
            else
                null

        let options =
            QcowCreateOptions(
                Size = size,
                Format = c.Format,
                Compat = compatOf c.Compat,
                ClusterSize = (if c.ClusterSize = 0 then 65536 else c.ClusterSize),
                RefcountBits = (if c.RefcountBits = 0 then 16 else c.RefcountBits),
                BackingFile = backing)

        image <- QcowImage.Create(path, options)

    /// Clusters a discard frees: whole ones only, as QEMU; afterwards they read as zeros. qcow v1
    /// ignores discards, and so does v2 over a backing file, which would show through.
    member private _.DiscardModel(offset: int64, length: int) =
        let first = (offset + cs - 1L) / cs
        let last = (offset + int64 length) / cs
        for k in first .. last - 1L do
            for i in k * cs .. k * cs + cs - 1L do
                model[int i] <-
                    match c.Format, c.Compat with
                    | QcowImageFormat.Qcow, _ -> model[int i]
                    | _, "0.10" when c.WithBacking -> model[int i]
                    | _ -> 0uy

    member this.Apply(op: EngineOp) =
        match op with
        | Write(o, l, s) ->
            let data = pattern s o l
            image.Write(o, ReadOnlySpan data)
            Array.blit data 0 model (int o) l
            true
        | Zero(o, l) ->
            image.WriteZeroes(o, int64 l)
            Array.Clear(model, int o, l)
            true
        | Discard(o, l) ->
            image.Discard(o, int64 l)
            this.DiscardModel(o, l)
            true
        | Read(o, l) ->
            let buffer = Array.zeroCreate l
            image.Read(o, Span buffer) |> ignore
            buffer = model[int o .. int o + l - 1]
        | Flush ->
            image.Flush()
            true
        | Reopen ->
            image.Dispose()
            image <- QcowImage.Open(path)
            true

    member _.ReadsAll() =
        let buffer = Array.zeroCreate (int size)
        image.Read(0L, Span buffer) |> ignore
        buffer = model

    member _.Size = size

    member _.ClusterSize = int cs

    interface IDisposable with
        member _.Dispose() =
            if not (isNull image) then image.Dispose()

let private run (c: Config) (ops: EngineOp list) =
    let dir = Directory.CreateTempSubdirectory("qcow-model-").FullName

    try
        use session = new Session(dir, c)
        session.Start()
        let failed = ops |> List.tryFindIndex (fun op -> not (session.Apply op))
        match failed with
        | Some i -> Prop.label (sprintf "read %d (%A) differs from the model" i ops[i]) false
        | None -> Prop.label "final read differs from the model" (session.ReadsAll())
    finally
        Directory.Delete(dir, true)

[<Xunit.Theory>]
[<Xunit.MemberData(nameof configs)>]
let ``random operations with reopens read back as the byte model says`` (c: Config) =
    let size = diskSize c
    let cs = effectiveClusterSize c
    let ops = Gen.listOfLength 14 (opGen size cs)
    let config = Config.QuickThrowOnFailure.WithMaxTest(if cs >= 2097152 then 4 else 8)
    Check.One(config, Prop.forAll (Arb.fromGen ops) (run c))
