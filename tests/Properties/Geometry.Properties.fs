/// Laws of Geometry.fs: the address arithmetic.
module Qcow.Properties.GeometryProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Properties.Generators

[<Property>]
let ``compose then decompose is identity`` () =
    Prop.forAll (Arb.fromGen (gen {
        let! g = geometry
        let! a = address g
        return g, a })) (fun (g, a) -> Geometry.decompose g (Geometry.compose g a) = a)

[<Property>]
let ``decompose then compose is identity`` () =
    Prop.forAll (Arb.fromGen (gen {
        let! g = geometry
        let! off = uint64Below (Geometry.bytesPerL1Entry g <<< 22)
        return g, off })) (fun (g, off) ->
        (Geometry.compose g (Geometry.decompose g (GuestOffset.Of off))).Guest = off)

[<Property>]
let ``l1 entries cover the size and no more than one extra entry`` () =
    Prop.forAll (Arb.fromGen (gen {
        let! g = geometry
        let! size = uint64Below (1UL <<< 61)
        return g, size })) (fun (g, size) ->
        let n = Geometry.l1EntriesFor g size
        let per = Geometry.bytesPerL1Entry g
        n * per >= size && (n = 0UL || (n - 1UL) * per < size))

[<Xunit.Fact>]
let ``64 KiB clusters map 512 MiB per L1 entry`` () =
    let g = Geometry.qcow2 16
    Xunit.Assert.Equal(512UL <<< 20, Geometry.bytesPerL1Entry g)
    let a = Geometry.decompose g (GuestOffset.Of 0x2_0001_2345UL)
    Xunit.Assert.Equal((16, 1, 0x2345), (a.L1Index.L1, a.L2Index.L2, a.OffsetInCluster.InCluster))
