/// Laws of L1Entry.fs and L2Entry.fs: raw entries against what they mean.
module Qcow.Properties.EntriesProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Properties.Generators

[<Property>]
let ``classify (ofMapping m) = m for every L2 mapping`` () =
    Prop.forAll (Arb.fromGen (gen {
        let! f = entryFormat
        let! m = mapping f
        return f, m })) (fun (f, m) -> L2Entry.classify f (L2Entry.ofMapping f m) = Ok m)

[<Property>]
let ``ofMapping (classify e) = e for entries without reserved bits`` () =
    Prop.forAll (Arb.fromGen (gen {
        let! f = entryFormat
        let! m = mapping f
        return f, L2Entry.ofMapping f m })) (fun (f, e) ->
        match L2Entry.classify f e with
        | Ok m -> L2Entry.ofMapping f m = e
        | Error _ -> false)

[<Property>]
let ``check's cluster type agrees with classify wherever classify accepts the entry`` (raw: uint64) =
    let f = { Version = 3; ClusterBits = 16; HasExternalData = false }
    match L2Entry.classify f raw with
    | Error _ -> true
    | Ok m ->
        let expected =
            match m with
            | Unallocated -> ClusterType.Unallocated
            | ZeroPlain -> ClusterType.ZeroPlain
            | ZeroAllocated _ -> ClusterType.ZeroAllocated
            | Normal _ -> ClusterType.Normal
            | Compressed _ -> ClusterType.Compressed
        L2Entry.clusterType f raw = expected

[<Property>]
let ``L1 entries round trip`` (table: uint64, copied: bool) =
    let m = { L2TableOffset = table &&& L1Entry.OffsetMask; IsCopied = copied }
    L1Entry.classify (L1Entry.ofMapping m) = m

[<Xunit.Fact>]
let ``a compressed entry decodes as QEMU wrote it`` () =
    // 64 KiB clusters: 0x49c0000000054d37 → offset 0x54d37, 40 sectors, 20169 bytes (FORMAT.md §3.5).
    let f = { Version = 3; ClusterBits = 16; HasExternalData = false }
    Xunit.Assert.Equal(Ok(Compressed(0x54d37UL, 20169u)), L2Entry.classify f 0x49c0000000054d37UL)

[<Xunit.Fact>]
let ``a v1 compressed entry decodes as QEMU wrote it`` () =
    // 4 KiB clusters: 0x80a8000000003000 → offset 0x3000, 21 bytes (FORMAT.md §1.3).
    let f = { Version = 1; ClusterBits = 12; HasExternalData = false }
    Xunit.Assert.Equal(Ok(Compressed(0x3000UL, 21u)), L2Entry.classify f 0x80a8000000003000UL)

[<Xunit.Fact>]
let ``the zero flag before version 3 is refused`` () =
    let f = { Version = 2; ClusterBits = 16; HasExternalData = false }
    Xunit.Assert.Equal(Error ZeroFlagBeforeVersion3, L2Entry.classify f 1UL)
