/// Laws of TableWalk.fs: the walk yields every non-zero L1 entry of the file once, in order, each
/// followed by every entry of the L2 table it names, read from where the entry says; then the
/// header's other structures, and the refcount table's entries.
module Qcow.Properties.TableWalkProperties

open System
open System.Buffers.Binary
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format

/// A new image of 1 MiB in 512-byte clusters (32 L1 entries, 64 entries a table), its L1 entries
/// replaced by random ones (most zero; the rest naming clusters inside the file, past its end,
/// or misaligned, with random flag bits), and a tail of random bytes for them to name.
let private images =
    gen {
        let image =
            match Create.qcow2 { Create.defaults (1UL <<< 20) with ClusterBits = 9 } with
            | Ok image -> image
            | Error e -> failwith e

        let! tail = Gen.arrayOfLength (16 * 512) (ArbMap.defaults |> ArbMap.generate<byte>)
        let file = Array.zeroCreate<byte> (int image.FileLength + tail.Length)

        for (offset, bytes) in image.Writes do
            bytes.CopyTo(file, int offset)

        tail.CopyTo(file, int image.FileLength)
        let clusters = file.Length / 512

        let entry =
            Gen.frequency
                [ 3, Gen.constant 0UL
                  2, Gen.choose (0, clusters + 4) |> Gen.map (fun c -> uint64 c * 512UL)
                  1, Gen.choose (1, clusters * 512) |> Gen.map uint64
                  1, Gen.choose (0, clusters) |> Gen.map (fun c -> uint64 c * 512UL ||| L1Entry.CopiedFlag ||| 0x100UL) ]

        let! l1 = Gen.arrayOfLength (int image.Header.L1Size) entry

        for i in 0 .. l1.Length - 1 do
            BinaryPrimitives.WriteUInt64BigEndian(Span(file, int image.Header.L1TableOffset + i * 8, 8), l1[i])

        return image.Header, file, l1
    }

let private readFrom (file: byte[]) (offset: uint64) (buffer: byte[]) =
    Array.Clear buffer

    if offset < uint64 file.Length then
        let n = min buffer.Length (file.Length - int offset)
        Array.blit file (int offset) buffer 0 n

/// A visitor that keeps what it is given.
type private Collector() =
    member val Items = ResizeArray<Walked>()

    interface IWalkVisitor with
        member this.Visit(item: inref<Walked>) = this.Items.Add item

let private walkOf (header: Header) (file: byte[]) =
    let collector = Collector()
    TableWalk.walk (readFrom file) header (uint64 file.Length) Everything [] 0UL (struct (0UL, 0UL)) [] collector
    List.ofSeq collector.Items

let private u64At (file: byte[]) (at: uint64) =
    if at + 8UL <= uint64 file.Length then BinaryPrimitives.ReadUInt64BigEndian(ReadOnlySpan(file, int at, 8)) else 0UL

[<Property>]
let ``every non-zero L1 entry comes once, in order, followed by each entry of the table it names (none past the end of the file)`` () =
    Prop.forAll (Arb.fromGen images) (fun (header, file, l1) ->
        let items = walkOf header file
        let tree = items |> List.filter (fun w -> w.Tree = 0 && w.Item <> WalkItem.L1Table)
        let expected = l1 |> Array.indexed |> Array.filter (fun (_, e) -> e <> 0UL) |> Array.toList

        let rec check (rest: Walked list) (entries: (int * uint64) list) =
            match entries, rest with
            | [], [] -> true
            | (i, e) :: more, w :: tail when w.Item = WalkItem.L1Entry && w.Index = i && w.Entry = e ->
                let table = e &&& L1Entry.OffsetMask
                // A table wholly past the end of the file reads as zeros and yields no entries.
                let perTable = if table >= uint64 file.Length then 0 else 512 / 8
                let l2 = List.truncate perTable tail

                List.length l2 = perTable
                && l2
                   |> List.forall (fun x ->
                       x.Item = WalkItem.L2Entry
                       && x.Offset = table
                       && x.EntryAt = table + uint64 x.Index * 8UL
                       && x.Entry = u64At file x.EntryAt
                       && x.Type = L2Entry.clusterType (Header.entryFormat header) x.Entry)
                && (l2 |> List.map (fun x -> x.Index)) = [ 0 .. perTable - 1 ]
                && check (List.skip perTable tail) more
            | _ -> false

        check tree expected)

[<Property>]
let ``the header comes first and the refcount table's entries last, one for each slot of the table`` () =
    Prop.forAll (Arb.fromGen images) (fun (header, file, _) ->
        let items = walkOf header file
        let refcountEntries = items |> List.filter (fun w -> w.Item = WalkItem.RefcountTableEntry)
        let slots = int (uint64 header.RefcountTableClusters * 512UL / 8UL)

        (List.head items).Item = WalkItem.HeaderCluster
        && List.length refcountEntries = slots
        && (List.last items).Item = WalkItem.RefcountTableEntry
        && refcountEntries |> List.forall (fun w -> w.Entry = u64At file w.EntryAt))
