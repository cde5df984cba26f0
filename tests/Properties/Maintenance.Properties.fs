/// Laws of Maintenance.fs (amend's rules, a resize's L1 change) and ZeroExpansion.fs.
module Qcow.Properties.MaintenanceProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Properties.Generators

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
        match Maintenance.amend h [] r with
        | Ok plan ->
            plan.RebuildRefcounts = (plan.RefcountOrder <> h.RefcountOrder)
            && plan.Downgrade = (plan.Version < h.Version)
            && (plan.Version = 3 || (plan.RefcountOrder = 4 && not plan.LazyRefcounts))
        | Error _ ->
            let version = defaultArg r.Version h.Version
            version = 2 && (defaultArg r.LazyRefcounts false || defaultArg r.RefcountOrder h.RefcountOrder <> 4))

[<Property>]
let ``a downgrade is refused while a snapshot has another disk size or more than 32 bits of VM state, as QEMU refuses it`` (otherSize: bool) =
    let vmStates = Gen.oneof [ Gen.constant 0UL; uint64Below (1UL <<< 32); uint64Below System.UInt64.MaxValue ]

    Prop.forAll (Arb.fromGen (Gen.zip headers vmStates)) (fun (h, vmState) ->
        let h3 = { h with Version = 3; RefcountOrder = 4; CompatibleFeatures = 0UL }
        let created = Snapshot.create "1" "s" 0u 0u 0x50000UL 1u (if otherSize then h3.Size + 512UL else h3.Size)
        let snapshot = { created with VmStateSize = vmState }
        let decided = Maintenance.amend h3 [ snapshot ] { Version = Some 2; LazyRefcounts = None; RefcountOrder = None }
        let blocked = otherSize || vmState > uint64 System.UInt32.MaxValue

        (decided = Error "Internal snapshots prevent downgrade of image") = blocked)

/// The refcount of a cluster as rebuilt structures hold it.
let private rebuiltRefcount (g: RefcountGeometry) (r: RefcountRebuild.Rebuilt) (cluster: uint64) =
    let perBlock = Refcount.entriesPerBlock g
    let cs = 1UL <<< g.ClusterBits
    let index = int (cluster / perBlock)

    if index * 8 >= r.Table.Length then
        0UL
    else
        match System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(System.ReadOnlySpan(r.Table, index * 8, 8)) with
        | 0UL -> 0UL
        | block ->
            let start, bytes = r.Blocks |> List.find (fun (o, b) -> block >= o && block < o + uint64 b.Length)
            Refcount.get g.RefcountOrder (System.ReadOnlySpan(bytes, int (block - start), int cs)) (int (cluster % perBlock))

[<Property(MaxTest = 60)>]
let ``a moved L1 table lies past everything in use, and the rebuilt refcounts count it, themselves and every reference but the old table's`` () =
    let cases =
        gen {
            let! h = headers
            let g = Header.geometry h
            let oldEnd = (h.L1TableOffset + uint64 h.L1Size * 8UL + Geometry.clusterSize g - 1UL) >>> g.ClusterBits
            let! extra = Gen.choose (0, 300)
            let! counts = Gen.arrayOfLength (int oldEnd + extra) (Gen.frequency [ 3, Gen.constant 0u; 2, Gen.constant 1u; 1, Gen.choose (2, 9) |> Gen.map uint32 ])
            let! grow = Gen.choose (1, 20000)
            return h, counts, uint32 (uint64 h.L1Size + uint64 grow)
        }

    Prop.forAll (Arb.fromGen cases) (fun (h, counts, l1Size) ->
        let g = Header.geometry h
        let rg = Header.refcountGeometry h
        let oldFirst = h.L1TableOffset >>> g.ClusterBits
        let oldClusters = Geometry.clustersFor g (uint64 h.L1Size * 8UL)
        // Every cluster of the old table is in use: the header names it.
        let counts = counts |> Array.mapi (fun c n -> if uint64 c >= oldFirst && uint64 c < oldFirst + oldClusters then max n 1u else n)
        let freeFrom = uint64 counts.Length
        let l1Clusters = Geometry.clustersFor g (uint64 l1Size * 8UL)

        match Maintenance.moveL1 h counts freeFrom (uint64 l1Size * Geometry.bytesPerL1Entry g) l1Size with
        | Error e -> Prop.label (sprintf "refused: %A" e) false
        | Ok move ->
            let structuresEnd = (move.Refcounts.TableOffset >>> g.ClusterBits) + uint64 move.Refcounts.TableClusters

            let expected (c: uint64) =
                if c >= structuresEnd then 0UL
                elif c >= freeFrom then 1UL
                elif c >= oldFirst && c < oldFirst + oldClusters then uint64 counts[int c] - 1UL
                else uint64 counts[int c]

            let wrong = [ 0UL .. structuresEnd + 3UL ] |> List.filter (fun c -> rebuiltRefcount rg move.Refcounts c <> expected c)

            (Prop.label "the new L1 table starts where nothing is in use" (move.L1Offset = (freeFrom <<< g.ClusterBits)))
            .&. Prop.label "the refcount structures follow the L1 table" (fst move.Refcounts.Blocks.Head >>> g.ClusterBits = freeFrom + l1Clusters)
            .&. Prop.label "the header names the new table and structures" (move.Header.L1TableOffset = move.L1Offset && move.Header.L1Size = l1Size && move.Header.RefcountTableOffset = move.Refcounts.TableOffset)
            .&. Prop.label (sprintf "clusters whose rebuilt refcount is wrong: %A" (List.truncate 5 wrong)) (List.isEmpty wrong))

[<Property>]
let ``zero expansion leaves no zero flag and shares no cluster it zeroes with another table`` (entryBits: uint64) (backing: bool) (tableRefs: byte) (hostRefs: byte) =
    Prop.forAll (Arb.fromGen clusterBits) (fun cb ->
        let format = { Version = 3; ClusterBits = cb; HasExternalData = false }
        let entry = entryBits &&& (L2Entry.OffsetMask &&& ~~~((1UL <<< cb) - 1UL) ||| L2Entry.ZeroFlag ||| L1Entry.CopiedFlag)
        let tableReferences = uint32 tableRefs % 4u + 1u
        let references = fun (_: uint64) -> tableReferences + uint32 hostRefs % 2u
        let need = ZeroExpansion.expansion format backing tableReferences references entry
        let newHost = 0x7770000UL <<< 4
        let after = ZeroExpansion.expanded tableReferences entry need newHost
        let kind = L2Entry.clusterType format entry

        (Prop.label "no zero flag after" (after &&& L2Entry.ZeroFlag = 0UL || kind <> ClusterType.ZeroPlain && kind <> ClusterType.ZeroAllocated))
        .&. Prop.label "other entries unchanged" (kind = ClusterType.ZeroPlain || kind = ClusterType.ZeroAllocated || after = entry)
        .&. Prop.label "unallocated only where no backing file shows through" (need <> ZeroExpansion.Unallocate || not backing)
        .&. Prop.label "zeroed in place only when no other table names it" (match need with ZeroExpansion.ZeroInPlace _ -> references 0UL <= tableReferences | _ -> true)
        .&. Prop.label "COPIED exactly when the table has one reference" (after = 0UL || after = entry || ((after &&& L1Entry.CopiedFlag <> 0UL) = (tableReferences = 1u))))
