/// Laws of a new metadata generation's arithmetic (Generation.fs): COPIED flags follow the
/// counts, free runs and refcount structures never land on anything in use.
module Qcow.Properties.GenerationProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format

let private format = { Version = 3; ClusterBits = 16; HasExternalData = false }

[<Property>]
let ``COPIED is set exactly on the allocated entries whose cluster has one reference`` (raw: uint64[]) (counts: byte[]) =
    let references (c: uint64) = if counts.Length = 0 then 1u else uint32 counts[int (c % uint64 counts.Length)] % 3u
    let entries = raw |> Array.map (fun e -> e &&& ~~~L2Entry.CompressedFlag)
    let fixedEntries = Generation.l2Flags format 16 references entries |> Option.defaultValue entries

    Array.forall2
        (fun (before: uint64) (after: uint64) ->
            match L2Entry.clusterType format before with
            | ClusterType.Normal
            | ClusterType.ZeroAllocated ->
                (after &&& ~~~L1Entry.CopiedFlag) = (before &&& ~~~L1Entry.CopiedFlag)
                && ((after &&& L1Entry.CopiedFlag <> 0UL) = (references ((before &&& L2Entry.OffsetMask) >>> 16) = 1u))
            | _ -> after = before)
        entries
        fixedEntries

[<Property>]
let ``a free run is free, and the first one from where the search starts`` (busyBits: bool[]) (count: byte) (from: byte) =
    let busy (c: uint64) = c < uint64 busyBits.Length && busyBits[int c]
    let n = uint64 (count % 8uy) + 1UL
    let start = Generation.freeRun busy n (uint64 from)
    let isFreeAt s = List.forall (fun c -> not (busy c)) [ s .. s + n - 1UL ]

    // No earlier start fits (the range is empty when the search's own start fits: start - 1 would wrap).
    start >= uint64 from
    && isFreeAt start
    && (start = uint64 from || List.forall (isFreeAt >> not) [ uint64 from .. start - 1UL ])

[<Property>]
let ``refcount structures land where nothing is, count every reference, and count themselves`` (busyBits: bool[]) (refs: byte[]) (order: byte) =
    let g = { ClusterBits = 9; RefcountOrder = int (order % 4uy) + 2 }
    let counts = refs |> Array.map (fun r -> uint32 (r % 4uy))
    let busy (c: uint64) = (c < uint64 busyBits.Length && busyBits[int c]) || (c < uint64 counts.Length && counts[int c] <> 0u)

    match Generation.refcountsWhereFree g counts busy with
    | Error _ -> false
    | Ok rebuilt ->
        let perBlock = Refcount.entriesPerBlock g
        let first = (fst rebuilt.Blocks.Head) >>> 9
        let blocks = snd rebuilt.Blocks.Head
        let clusters = uint64 blocks.Length / 512UL + uint64 rebuilt.TableClusters
        let stored (c: uint64) =
            Refcount.get g.RefcountOrder (System.ReadOnlySpan(blocks, int (c / perBlock * 512UL), 512)) (int (c % perBlock))

        List.forall (busy >> not) [ first .. first + clusters - 1UL ]
        && rebuilt.TableOffset = ((first + uint64 blocks.Length / 512UL) <<< 9)
        && Array.forall id (Array.init counts.Length (fun c -> uint64 c >= first && uint64 c < first + clusters || stored (uint64 c) = uint64 counts[c]))
        && List.forall (fun c -> stored c = 1UL) [ first .. first + clusters - 1UL ]
