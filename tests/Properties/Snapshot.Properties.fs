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
