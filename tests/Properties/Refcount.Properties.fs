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
