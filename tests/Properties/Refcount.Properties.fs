/// Laws of Refcount.fs: packing at every refcount order.
module Qcow.Properties.RefcountProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Properties.Generators

let private case =
    gen {
        let! order = Gen.choose (0, 6)
        let g = { ClusterBits = 9; RefcountOrder = order }
        let entries = int (Refcount.entriesPerBlock g)
        let! index = Gen.choose (0, entries - 1)
        let! value = uint64Below UInt64.MaxValue |> Gen.map (fun v -> v &&& Refcount.maxValue g)
        let! noise = Gen.arrayOfLength 512 (ArbMap.defaults |> ArbMap.generate<byte>)
        return order, index, value, noise
    }

[<Property>]
let ``get after set returns the value and leaves every other entry alone`` () =
    Prop.forAll (Arb.fromGen case) (fun (order, index, value, noise) ->
        let block = Array.copy noise
        Refcount.set order (Span block) index value
        let g = { ClusterBits = 9; RefcountOrder = order }
        let others =
            [ 0 .. int (Refcount.entriesPerBlock g) - 1 ]
            |> List.forall (fun i -> i = index || Refcount.get order (ReadOnlySpan block) i = Refcount.get order (ReadOnlySpan noise) i)
        Refcount.get order (ReadOnlySpan block) index = value && others)

[<Xunit.Fact>]
let ``one-bit refcounts are packed LSB first`` () =
    // clusters 0–6 in use → byte 0 = 0x7f (FORMAT.md §4.2).
    let block = Array.zeroCreate<byte> 512
    for i in 0..6 do
        Refcount.set 0 (Span block) i 1UL
    Xunit.Assert.Equal(0x7fuy, block[0])

[<Xunit.Fact>]
let ``sixteen-bit refcounts are big-endian`` () =
    let block = Array.zeroCreate<byte> 512
    Refcount.set 4 (Span block) 1 0x1234UL
    Xunit.Assert.Equal<byte[]>([| 0uy; 0uy; 0x12uy; 0x34uy |], block[0..3])

/// Counts with holes: 512-byte clusters and 16-bit refcounts, so a block covers 256 clusters
/// and a few hundred clusters need several blocks; cluster 0, the header, is always in use.
let private countsWithHoles =
    gen {
        let! clusters = Gen.choose (0, 900)
        let! counts = Gen.arrayOfLength clusters (Gen.frequency [ 2, Gen.constant 0u; 3, Gen.choose (1, 3) |> Gen.map uint32 ])
        return Array.append [| 1u |] counts
    }

[<Property>]
let ``structures placed in holes take only free clusters and record every count, themselves included`` () =
    Prop.forAll (Arb.fromGen countsWithHoles) (fun counts ->
        let g = { ClusterBits = 9; RefcountOrder = 4 }
        match RefcountRebuild.placeInHoles g counts (uint64 counts.Length) with
        | Error e -> failwithf "%A" e
        | Ok placed ->
            let own =
                [ for (offset, _) in placed.Blocks -> offset >>> 9
                  for i in 0UL .. uint64 placed.TableClusters - 1UL -> (placed.TableOffset >>> 9) + i ]
            let refcount (cluster: uint64) =
                let index = cluster / Refcount.entriesPerBlock g
                let blockOffset = Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ReadOnlySpan(placed.Table, int index * 8, 8))
                match placed.Blocks |> List.tryFind (fun (offset, _) -> offset = blockOffset && offset <> 0UL) with
                | Some(_, bytes) -> Refcount.get 4 (ReadOnlySpan bytes) (int (cluster % Refcount.entriesPerBlock g))
                | None -> 0UL
            let free = own |> List.forall (fun c -> c >= uint64 counts.Length || counts[int c] = 0u)
            let distinct = (List.distinct own).Length = own.Length
            let recorded = counts |> Array.mapi (fun c n -> refcount (uint64 c) = uint64 n || List.contains (uint64 c) own) |> Array.forall id
            let themselves = own |> List.forall (fun c -> refcount c = 1UL)
            free && distinct && recorded && themselves)
