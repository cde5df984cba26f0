/// Laws of Create.fs: a new image decodes, and its refcounts count exactly what its header reaches.
module Qcow.Properties.CreateProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format

let private options =
    gen {
        let! version = Gen.elements [ 2; 3 ]
        let! bits = Gen.choose (9, 21)
        let! order = if version = 3 then Gen.choose (0, 6) else Gen.constant 4
        let! size = Gen.choose (0, 1 <<< 20) |> Gen.map (fun s -> uint64 s * 65536UL)
        let! lazyRefcounts = if version = 3 then Gen.elements [ false; true ] else Gen.constant false
        let! backing = Gen.elements [ None; Some "base.qcow2" ]

        return
            { Create.defaults size with
                Version = version
                ClusterBits = bits
                RefcountOrder = order
                LazyRefcounts = lazyRefcounts
                BackingFile = backing
                BackingFormat = backing |> Option.map (fun _ -> "qcow2") }
    }

/// Counts the references the walk finds, cluster by cluster.
type private Counter(clusterBits: int) =
    member val Counts = Collections.Generic.Dictionary<uint64, uint64>()

    member this.Add (offset: uint64) (length: uint64) =
        if length > 0UL then
            for c in offset >>> clusterBits .. (offset + length - 1UL) >>> clusterBits do
                this.Counts[c] <- (match this.Counts.TryGetValue c with | true, n -> n | _ -> 0UL) + 1UL

    interface IWalkVisitor with
        member this.Visit(item: inref<Walked>) =
            let cs = 1UL <<< clusterBits

            match item.Item with
            | WalkItem.HeaderCluster
            | WalkItem.L1Table
            | WalkItem.RefcountTable -> this.Add item.Offset item.Length
            | WalkItem.L1Entry -> this.Add (item.Entry &&& L1Entry.OffsetMask) cs
            | WalkItem.RefcountTableEntry when item.Entry <> 0UL -> this.Add (item.Entry &&& ~~~Refcount.TableReservedMask) cs
            | _ -> ()

[<Property(MaxTest = 60)>]
let ``a new image decodes to what was asked, and its refcounts count exactly its header, tables and refcount structures`` () =
    Prop.forAll (Arb.fromGen options) (fun o ->
        match Create.qcow2 o with
        | Error _ -> true
        | Ok image ->
            let file = Array.zeroCreate<byte> (int image.FileLength)

            for (offset, bytes) in image.Writes do
                bytes.CopyTo(file, int offset)

            let first = Array.zeroCreate<byte> (1 <<< o.ClusterBits)
            Array.blit file 0 first 0 (min first.Length file.Length)

            match HeaderDecode.decode first (min first.Length file.Length) with
            | Error e -> failwithf "the new header does not decode: %A" e
            | Ok h ->
                let read (offset: uint64) (buffer: byte[]) =
                    Array.Clear buffer

                    if offset < uint64 file.Length then
                        Array.blit file (int offset) buffer 0 (min buffer.Length (file.Length - int offset))

                let counter = Counter(h.ClusterBits)
                TableWalk.walk read h (uint64 file.Length) Everything [] 0UL (struct (0UL, 0UL)) [] counter
                let g = Header.refcountGeometry h
                let table = TableWalk.refcountTable read h

                let stored (c: uint64) =
                    let index = int (c >>> Refcount.blockBits g)
                    let block = if index < table.Length then table[index] &&& ~~~Refcount.TableReservedMask else 0UL

                    if block = 0UL then
                        0UL
                    else
                        let bytes = Array.zeroCreate<byte> (1 <<< h.ClusterBits)
                        read block bytes
                        Refcount.get g.RefcountOrder (ReadOnlySpan bytes) (int (c &&& (Refcount.entriesPerBlock g - 1UL)))

                let clusters = (uint64 file.Length + (1UL <<< h.ClusterBits) - 1UL) >>> h.ClusterBits

                h.Size = o.Size
                && h.Version = o.Version
                && h.ClusterBits = o.ClusterBits
                && h.RefcountOrder = o.RefcountOrder
                && Header.hasLazyRefcounts h = o.LazyRefcounts
                && h.BackingFileName = o.BackingFile
                && [ 0UL .. clusters - 1UL ]
                   |> List.forall (fun c -> stored c = (match counter.Counts.TryGetValue c with | true, n -> n | _ -> 0UL)))
