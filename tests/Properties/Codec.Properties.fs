/// Laws of the cluster codec: every cluster Qcow compresses inflates back to itself (with the
/// standard inflater; QEMU reading them with its 4 KiB window is an oracle test), and a cluster
/// that does not compress below the space given is reported, not cut short.
module Qcow.Properties.CodecProperties

open System
open System.IO
open System.IO.Compression
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Qcow.IO

let private inflate (stream: byte[]) (length: int) =
    use input = new MemoryStream(stream)
    use inflater = new DeflateStream(input, CompressionMode.Decompress)
    let output = Array.zeroCreate<byte> length
    let mutable total = 0
    let mutable n = -1

    while n <> 0 && total < length do
        n <- inflater.Read(output, total, length - total)
        total <- total + n

    output

/// Clusters with structure: runs, repeats at every distance up to past the window, noise.
let private cluster =
    gen {
        let! bits = Gen.choose (9, 16)
        let size = 1 <<< bits
        let! seed = Gen.choose (0, Int32.MaxValue)
        let! shape = Gen.choose (0, 4)
        let rng = Random seed
        let data = Array.zeroCreate<byte> size

        match shape with
        | 0 -> ()
        | 1 -> rng.NextBytes data
        | 2 ->
            let period = rng.Next(1, 6000)
            let pattern = Array.init period (fun _ -> byte (rng.Next 4))
            for i in 0 .. size - 1 do
                data[i] <- pattern[i % period]
        | 3 ->
            for i in 0 .. size - 1 do
                data[i] <- byte (if rng.Next 10 = 0 then rng.Next 256 else i / 97)
        | _ ->
            rng.NextBytes data
            for i in 0 .. rng.Next 20 do
                let from = rng.Next size
                let at = rng.Next size
                let n = min (rng.Next 300) (size - max from at)
                Array.blit data from data at n

        return data
    }

[<Property(MaxTest = 300)>]
let ``every cluster the encoder compresses inflates back to itself`` () =
    Prop.forAll (Arb.fromGen cluster) (fun data ->
        let output = Array.zeroCreate<byte> (data.Length * 2)
        let n = RawDeflateEncoder().Compress(ReadOnlySpan data, Span output)
        n > 0 && inflate output[.. n - 1] data.Length = data)

[<Property(MaxTest = 100)>]
let ``a cluster that does not fit is reported, never cut short`` () =
    Prop.forAll (Arb.fromGen cluster) (fun data ->
        let room = data.Length - 1
        let output = Array.zeroCreate<byte> room
        let n = RawDeflateEncoder().Compress(ReadOnlySpan data, Span output)
        n = -1 || (n <= room && inflate output[.. n - 1] data.Length = data))
