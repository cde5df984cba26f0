/// Laws of the snapshot table's entry codec (Snapshot.fs).
module Qcow.Properties.SnapshotProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Properties.Generators

/// Text QEMU stores as an ID or a name: any Unicode scalar values, UTF-8 on disk.
let private text =
    Gen.choose (0, 40)
    |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.oneof [ Gen.choose (0x20, 0x7e); Gen.choose (0xa0, 0xd7ff); Gen.choose (0xe000, 0x10ffff) ]))
    |> Gen.map (fun points -> String.Join("", points |> Array.map Char.ConvertFromUtf32))

let private snapshots =
    gen {
        let! cb = clusterBits
        let! l1Size = Gen.choose (0, int (Limits.MaxL1Bytes / 8UL))
        let! l1Cluster = uint64Below ((Limits.MaxFileOffset - uint64 l1Size * 8UL) >>> cb)
        let! extraLength = Gen.frequency [ 1, Gen.constant 0; 1, Gen.constant 16; 3, Gen.constant 24; 1, Gen.choose (0, int Snapshot.MaxExtraData) ]
        let! extra = Gen.arrayOfLength extraLength (Gen.choose (0, 255) |> Gen.map byte)
        // Without room for the 64-bit field, the VM state size is the 32-bit one.
        let! vmState = if extraLength >= 8 then uint64Below UInt64.MaxValue else uint64Below (1UL <<< 32)
        let! id = text
        let! name = text
        let! seconds = ArbMap.defaults |> ArbMap.generate<uint32>
        let! nanoseconds = Gen.choose (0, 999_999_999)
        let! clock = uint64Below UInt64.MaxValue

        return
            cb,
            { L1TableOffset = l1Cluster <<< cb
              L1Size = uint32 l1Size
              Id = id
              Name = name
              DateSeconds = seconds
              DateNanoseconds = uint32 nanoseconds
              VmClockNanoseconds = clock
              VmStateSize = vmState
              ExtraData =
                if extraLength >= 8 then
                    Array.append (BitConverter.GetBytes vmState |> Array.rev) extra[8..]
                else
                    extra }
    }

[<Property>]
let ``an encoded snapshot entry measures and decodes back to itself`` () =
    Prop.forAll (Arb.fromGen snapshots) (fun (cb, snapshot) ->
        let at = 0x50000UL
        let bytes = Snapshot.encode snapshot

        (Prop.label "entryBytes measures the encoding" (Snapshot.entryBytes (ReadOnlySpan(bytes, 0, Snapshot.FixedBytes)) at = Ok(uint64 bytes.Length)))
        .&. Prop.label "padded to 8 bytes" (bytes.Length % 8 = 0)
        .&. Prop.label "decodes back" (Snapshot.decode cb bytes at = Ok snapshot))

[<Property>]
let ``a table of entries is their encodings one after another, each found again by its ID`` () =
    Prop.forAll (Arb.fromGen (Gen.listOf snapshots |> Gen.map (List.map snd))) (fun entries ->
        let numbered = entries |> List.mapi (fun i s -> { s with Id = string (i + 1) })
        let table = Snapshot.encodeTable numbered

        (Prop.label "concatenated" (table = (numbered |> List.map Snapshot.encode |> Array.concat)))
        .&. Prop.label "found by ID" (numbered |> List.indexed |> List.forall (fun (i, s) -> Snapshot.tryFind s.Id numbered = Some i)))

[<Property>]
let ``a new ID is one past the largest numeric ID, and unused`` () =
    Prop.forAll (Arb.fromGen (Gen.listOf (Gen.choose (0, 100000)))) (fun ids ->
        let entries = ids |> List.map (fun n -> { Snapshot.create (string n) "x" 0u 0u 0UL 0u 0UL with Id = string n })
        let next = Snapshot.nextId entries

        (Prop.label "one past the largest" (next = string ((List.fold max 0 ids) + 1)))
        .&. Prop.label "unused" (entries |> List.forall (fun s -> s.Id <> next)))

[<Property>]
let ``an ID wins over a name, as QEMU looks a snapshot up`` (n: PositiveInt) =
    let byName = { Snapshot.create "7" (string n.Get) 0u 0u 0UL 0u 0UL with Id = "7" }
    let byId = { Snapshot.create (string n.Get) "other" 0u 0u 0UL 0u 0UL with Id = string n.Get }
    string n.Get = "7" || Snapshot.tryFind (string n.Get) [ byName; byId ] = Some 1

[<Property>]
let ``a snapshot qemu-img takes records the disk size and no VM state`` (size: uint64) (seconds: uint32) =
    let s = Snapshot.create "1" "name" seconds 0u 0x10000UL 4u size
    let decoded = Snapshot.decode 16 (Snapshot.encode s) 0UL

    decoded = Ok s
    && Snapshot.diskSize s = Some size
    && Snapshot.icount s = Some 0UL
    && s.VmStateSize = 0UL

[<Property>]
let ``a rewritten entry has version 3's extra data, keeping what it recorded`` (size: uint64) =
    Prop.forAll (Arb.fromGen snapshots) (fun (_, s) ->
        let n = Snapshot.normalized size s

        if s.ExtraData.Length >= 24 then
            n = s
        else
            n.ExtraData.Length = 24
            // The fields the entry had whole are kept: the VM state size, then the disk size.
            && (let kept = if s.ExtraData.Length >= 16 then 16 elif s.ExtraData.Length >= 8 then 8 else 0
                n.ExtraData[.. kept - 1] = s.ExtraData[.. kept - 1])
            && Snapshot.diskSize n = (if s.ExtraData.Length >= 16 then Snapshot.diskSize s else Some size)
            && Snapshot.icount n = None
            && n.VmStateSize = s.VmStateSize
            && { n with ExtraData = s.ExtraData } = s)
