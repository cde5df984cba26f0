/// Laws of persistent bitmaps' arithmetic and codecs (Bitmaps.fs): the directory round-trips,
/// table entries classify as QEMU's check_table_entry does, and the bits a range sets cover it.
module Qcow.Properties.BitmapsProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Properties.Generators

let private names =
    Gen.choose (0, 60)
    |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.oneof [ Gen.choose (0x20, 0x7e); Gen.choose (0xa0, 0xd7ff) ]))
    |> Gen.map (fun points -> String.Join("", points |> Array.map Char.ConvertFromUtf32))

let private bitmaps =
    gen {
        let! cb = clusterBits
        let! name = names
        let! table = uint64Below (1UL <<< 40)
        let! entries = Gen.choose (1, 1 <<< 20)
        let! flags = Gen.elements [ 0u; Bitmaps.InUseFlag; Bitmaps.AutoFlag; Bitmaps.InUseFlag ||| Bitmaps.AutoFlag ]
        let! granularity = Gen.choose (Bitmaps.MinGranularityBits, Bitmaps.MaxGranularityBits)

        return
            { Name = name
              TableOffset = table <<< cb
              TableEntries = uint32 entries
              Flags = flags
              GranularityBits = granularity
              Type = Bitmaps.DirtyTrackingType
              ExtraDataBytes = 0u }
    }

[<Property>]
let ``an encoded directory decodes back to its bitmaps, each entry padded to 8 bytes`` () =
    Prop.forAll (Arb.fromGen (Gen.listOf bitmaps)) (fun list ->
        let directory = Bitmaps.encode list

        (Prop.label "sized by entryBytes" (directory.Length = List.sumBy (fun (b: Bitmap) -> Bitmaps.entryBytes b.Name) list))
        .&. Prop.label "padded" (directory.Length % 8 = 0)
        .&. Prop.label "decodes back" (Bitmaps.decode 0x30000UL directory (uint32 list.Length) = Ok list))

[<Property>]
let ``a table entry is zeros, ones, a cluster-aligned offset or invalid, as QEMU checks it`` (entry: uint64) =
    Prop.forAll (Arb.fromGen clusterBits) (fun cb ->
        let offset = entry &&& 0x00fffffffffffe00UL

        match Bitmaps.tableEntry cb entry with
        | AllZeros -> entry = 0UL
        | AllOnes -> entry = 1UL
        | StoredAt at -> at = offset && at <> 0UL && at % (1UL <<< cb) = 0UL && entry = offset
        | InvalidEntry ->
            entry &&& 0xff000000000001feUL <> 0UL
            || (offset <> 0UL && (entry &&& 1UL <> 0UL || offset % (1UL <<< cb) <> 0UL)))

[<Property>]
let ``the bits a range sets are exactly the granules it touches, within a table sized for the disk`` () =
    let cases =
        gen {
            let! cb = clusterBits
            let! g = Gen.choose (Bitmaps.MinGranularityBits, 24)
            let! size = uint64Below (1UL <<< 44) |> Gen.map ((+) 1UL)
            let! offset = uint64Below size
            let! length = uint64Below (size - offset + 1UL)
            return cb, g, size, offset, length
        }

    Prop.forAll (Arb.fromGen cases) (fun (cb, g, size, offset, length) ->
        let struct (first, last) = Bitmaps.bitsOf g size offset length
        let bits = Bitmaps.bitCount size g
        let entries = Bitmaps.tableEntriesFor cb size g

        (Prop.label "empty for nothing" (length > 0UL || first = last))
        .&. Prop.label "first granule holds the first byte" (length = 0UL || first = (offset >>> g))
        .&. Prop.label "last granule holds the last byte" (length = 0UL || last - 1UL = ((offset + length - 1UL) >>> g))
        .&. Prop.label "within the bitmap" (last <= bits)
        .&. Prop.label "the table holds every bit, with less than one cluster spare" (entries * Bitmaps.bitsPerCluster cb >= bits && (entries = 0UL || (entries - 1UL) * Bitmaps.bitsPerCluster cb < bits)))
