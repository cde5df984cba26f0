/// Laws of Measure.fs: the refcount fixed point counts everything it must, and the totals are
/// the ones qemu-img measure prints.
module Qcow.Properties.MeasureProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format

[<Property>]
let ``refcount structures count every cluster, themselves included, with no block to spare`` () =
    Prop.forAll (Arb.fromGen (gen {
        let! clusterBits = Gen.choose (9, 21)
        let! order = Gen.choose (0, 6)
        let! clusters = Gen.choose64 (1L, 1L <<< 40)
        return clusterBits, order, clusters })) (fun (clusterBits, order, clusters) ->
        let cs = 1L <<< clusterBits
        let perBlock = cs * 8L >>> order
        let struct (blocks, table) = Measure.refcountClusters cs order clusters
        let counted = clusters + blocks + table
        blocks * perBlock >= counted
        && (blocks - 1L) * perBlock < counted
        && table * (cs / 8L) >= blocks
        && (table - 1L) * (cs / 8L) < blocks)

[<Xunit.Fact>]
let ``a 1 GiB image with 64 KiB clusters costs what qemu-img measure says`` () =
    // qemu-img 7.2: measure --size 1G -O qcow2 → required 393216, fully allocated 1074135040.
    let c = Measure.costs (1L <<< 30) 16 4 false
    Xunit.Assert.Equal(1074135040L, c.FullyAllocated)
    Xunit.Assert.Equal(393216L, Measure.required c 0L)
