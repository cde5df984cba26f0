/// Laws of Header.Decode.fs and Header.Encode.fs, and of the v1 header.
module Qcow.Properties.HeaderProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.Format
open Qcow.Properties.Generators

/// What decode fills in that encode derives.
let private derived (h: Header) (bytes: byte[]) =
    let offset = Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ReadOnlySpan(bytes, 8, 8))
    { h with
        BackingFileOffset = offset
        BackingFileSize = h.BackingFileName |> Option.map (fun n -> uint32 (Text.Encoding.UTF8.GetByteCount n)) |> Option.defaultValue 0u }

[<Property(MaxTest = 300)>]
let ``decode (encode h) = h for every header that fits its cluster`` () =
    Prop.forAll (Arb.fromGen header) (fun h ->
        match HeaderEncode.encode h with
        | Error _ -> true
        | Ok bytes -> HeaderDecode.decode bytes bytes.Length = Ok(derived h bytes))

[<Property(MaxTest = 300)>]
let ``encode (decode b) = b: unknown extensions and fields survive a rewrite byte for byte`` () =
    Prop.forAll (Arb.fromGen header) (fun h ->
        match HeaderEncode.encode h with
        | Error _ -> true
        | Ok bytes ->
            match HeaderDecode.decode bytes bytes.Length with
            | Ok decoded -> HeaderEncode.encode decoded = Ok bytes
            | Error _ -> false)

[<Property>]
let ``v1 headers round trip`` () =
    Prop.forAll (Arb.fromGen (gen {
        let! size = uint64Below (1UL <<< 40) |> Gen.map ((+) 2UL)
        let! backing = Gen.elements [ None; Some "base.qcow" ]
        return size, backing })) (fun (size, backing) ->
        let h, _, _ = QcowV1Header.forCreate size backing
        QcowV1Header.decode (ReadOnlySpan(QcowV1Header.encode h)) = Ok h)

[<Xunit.Fact>]
let ``an unknown incompatible bit is refused by its name from the feature table`` () =
    let h = { (Create.qcow2 (Create.defaults (1UL <<< 30)) |> Result.defaultWith failwith).Header with IncompatibleFeatures = 1UL <<< 40 }
    let table = FeatureNameTable [ { Kind = FeatureKind.Incompatible; Bit = 40uy; Name = "teleportation" } ]
    let bytes = HeaderEncode.encode { h with Extensions = [ table ] } |> Result.defaultWith (fun e -> failwith (string e))
    match HeaderDecode.decode bytes bytes.Length with
    | Error(UnsupportedFeatures(_, bits, names)) ->
        Xunit.Assert.Equal(1UL <<< 40, bits)
        Xunit.Assert.Equal<string list>([ "teleportation" ], names)
    | other -> failwithf "expected UnsupportedFeatures, got %A" other
