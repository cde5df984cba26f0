/// Laws of Maintenance.fs: amend's rules and a resize's L1 change.
module Qcow.Properties.MaintenanceProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format

/// A new image's header: compat, cluster size and virtual size at random.
let private headers =
    gen {
        let! version = Gen.elements [ 2; 3 ]
        let! bits = Gen.choose (9, 16)
        let! size = Gen.choose (1, 1 <<< 20) |> Gen.map (fun s -> uint64 s * 4096UL)

        return
            match Create.qcow2 { Create.defaults size with Version = version; ClusterBits = bits } with
            | Ok image -> image.Header
            | Error e -> failwith e
    }

[<Property>]
let ``a resize keeps, grows in place or moves the L1 table, as the new size's entries fit`` () =
    Prop.forAll (Arb.fromGen (Gen.zip headers (Gen.choose (1, 1 <<< 22) |> Gen.map (fun s -> uint64 s * 4096UL)))) (fun (h, newSize) ->
        let g = Header.geometry h
        let needed = uint32 (Geometry.l1EntriesFor g newSize)
        let room = Geometry.clustersFor g (uint64 h.L1Size * 8UL) * Geometry.clusterSize g / 8UL

        match Maintenance.l1Change h newSize with
        | Ok(KeepL1 n) -> n = needed && n <= h.L1Size
        | Ok(GrowInPlace n) -> n = needed && n > h.L1Size && uint64 n <= room
        | Ok(MoveL1 n) -> n = needed && uint64 n > room
        | Error _ -> not (Measure.fitsL1Limit (int64 newSize) h.ClusterBits false))

[<Property>]
let ``an amend rebuilds refcounts exactly when the width changes, and version 2 keeps 16 bits and no lazy refcounts`` () =
    let requests =
        gen {
            let! version = Gen.elements [ None; Some 2; Some 3 ]
            let! lazyRefcounts = Gen.elements [ None; Some false; Some true ]
            let! order = Gen.elements [ None; Some 0; Some 4; Some 6 ]
            return { Version = version; LazyRefcounts = lazyRefcounts; RefcountOrder = order }
        }

    Prop.forAll (Arb.fromGen (Gen.zip headers requests)) (fun (h, r) ->
        match Maintenance.amend h r with
        | Ok plan ->
            plan.RebuildRefcounts = (plan.RefcountOrder <> h.RefcountOrder)
            && plan.Downgrade = (plan.Version < h.Version)
            && (plan.Version = 3 || (plan.RefcountOrder = 4 && not plan.LazyRefcounts))
        | Error _ ->
            let version = defaultArg r.Version h.Version
            version = 2 && (defaultArg r.LazyRefcounts false || defaultArg r.RefcountOrder h.RefcountOrder <> 4))
