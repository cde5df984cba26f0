/// Generators for the format's values, in one place.
module internal Qcow.Properties.Generators

open FsCheck
open FsCheck.FSharp
open Qcow.Format

let clusterBits = Gen.choose (Limits.MinClusterBits, Limits.MaxClusterBits)

let qcow2Geometry = clusterBits |> Gen.map Geometry.qcow2

let v1Geometry =
    gen {
        let! cb = Gen.choose (Limits.MinClusterBitsV1, Limits.MaxClusterBitsV1)
        let! l2 = Gen.choose (Limits.MinL2BitsV1, Limits.MaxL2BitsV1)
        return Geometry.qcowV1 cb l2
    }

let geometry = Gen.oneof [ qcow2Geometry; v1Geometry ]

let uint64Below (limit: uint64) =
    gen {
        let! hi = Gen.choose (0, System.Int32.MaxValue)
        let! lo = Gen.choose (0, System.Int32.MaxValue)
        return ((uint64 hi <<< 31) ||| uint64 lo) % limit
    }

/// A guest address inside what an L1 table of at most 2^22 entries can map.
let address (g: Geometry) =
    gen {
        let! l1 = Gen.choose (0, (1 <<< 22) - 1)
        let! l2 = Gen.choose (0, Geometry.l2Entries g - 1)
        let! inCluster = Gen.choose (0, int (Geometry.clusterSize g) - 1)
        return
            { L1Index = L1Index.Of l1
              L2Index = L2Index.Of l2
              OffsetInCluster = OffsetInCluster.Of inCluster }
    }

let entryFormat =
    gen {
        let! version = Gen.elements [ 1; 2; 3 ]
        let! cb =
            if version = 1 then Gen.choose (Limits.MinClusterBitsV1, Limits.MaxClusterBitsV1) else clusterBits
        return { Version = version; ClusterBits = cb; HasExternalData = false }
    }

let private alignedHost (cb: int) =
    uint64Below (Limits.MaxHostOffset >>> cb) |> Gen.map (fun c -> (c <<< cb) &&& L2Entry.OffsetMask) |> Gen.filter (fun h -> h <> 0UL)

/// Every mapping the format can hold.
let mapping (f: EntryFormat) =
    let cb = f.ClusterBits

    let compressed =
        if f.Version = 1 then
            gen {
                let! host = uint64Below (1UL <<< (63 - cb))
                let! length = Gen.choose (1, (1 <<< cb) - 1)
                return Compressed(host, uint32 length)
            }
        else
            gen {
                let x = L2Entry.compressedOffsetBits cb
                let! host = uint64Below (1UL <<< (min x 56))
                let! sectors = Gen.choose (1, 1 <<< (cb - 8))
                return Compressed(host, uint32 (sectors * 512) - uint32 (host &&& 511UL))
            }

    let normal =
        gen {
            let! host = if f.Version = 1 then uint64Below (1UL <<< 62) |> Gen.map (fun h -> (h &&& ~~~511UL) ||| 512UL) else alignedHost cb
            let! copied = if f.Version = 1 then Gen.constant true else ArbMap.defaults |> ArbMap.generate<bool>
            return Normal(host, copied)
        }

    let zero =
        gen {
            let! host = alignedHost cb
            let! copied = ArbMap.defaults |> ArbMap.generate<bool>
            return ZeroAllocated(host, copied)
        }

    match f.Version with
    | 3 -> Gen.oneof [ Gen.constant Unallocated; Gen.constant ZeroPlain; zero; normal; compressed ]
    | _ -> Gen.oneof [ Gen.constant Unallocated; normal; compressed ]

let private asciiName maxLength =
    gen {
        let! n = Gen.choose (1, maxLength)
        let! chars = Gen.arrayOfLength n (Gen.choose (int 'a', int 'z') |> Gen.map char)
        return System.String chars
    }

let private extension =
    Gen.oneof
        [ asciiName 15 |> Gen.map BackingFormat
          asciiName 40 |> Gen.map ExternalDataFile
          gen {
              let! n = Gen.choose (0, 40)
              let! data = Gen.arrayOfLength n (ArbMap.defaults |> ArbMap.generate<byte>)
              let! magic = Gen.choose (1, 0x7fffffff)
              return Unknown(uint32 magic ||| 0x10000000u, data)
          }
          Gen.constant (FeatureNameTable Header.standardFeatureTable) ]

/// A qcow2 header as the encoder writes it (derived fields consistent).
let header =
    gen {
        let! version = Gen.elements [ 2; 3 ]
        let! cb = Gen.choose (12, Limits.MaxClusterBits)
        let g = Geometry.qcow2 cb
        let! size = uint64Below (Create.maxSize cb)
        let l1 = Geometry.l1EntriesFor g size
        let aligned = uint64Below (1UL <<< 40) |> Gen.map (fun o -> (o <<< cb) &&& ~~~0UL)
        let! l1Offset = aligned
        let! reftable = aligned
        let! reftableClusters = Gen.choose (1, int (Limits.MaxRefcountTableBytes >>> cb))
        let! order = if version = 3 then Gen.choose (0, 6) else Gen.constant 4
        let! zstd = if version = 3 then Gen.elements [ 0uy; 1uy ] else Gen.constant 0uy
        let! lazyRefcounts = if version = 3 then Gen.elements [ 0UL; 1UL ] else Gen.constant 0UL
        let! extraLength = if version = 3 then Gen.elements [ 0; 8; 16 ] else Gen.constant 0
        let! extra = Gen.arrayOfLength extraLength (ArbMap.defaults |> ArbMap.generate<byte>)
        let! extensions = Gen.listOfLength 3 extension |> Gen.map (List.distinctBy (fun e -> e.GetType()))
        let! backing = Gen.oneof [ Gen.constant None; asciiName 100 |> Gen.map Some ]

        return
            { Version = version
              BackingFileOffset = 0UL
              BackingFileSize = 0u
              ClusterBits = cb
              Size = size
              CryptMethod = 0u
              L1Size = uint32 l1
              L1TableOffset = l1Offset
              RefcountTableOffset = reftable
              RefcountTableClusters = uint32 reftableClusters
              SnapshotCount = 0u
              SnapshotsOffset = 0UL
              IncompatibleFeatures = if zstd = 1uy then Header.CompressionTypeBit else 0UL
              CompatibleFeatures = lazyRefcounts
              AutoclearFeatures = 0UL
              RefcountOrder = order
              HeaderLength = uint32 (if version = 3 then Limits.HeaderV3Length + extraLength else Limits.HeaderV2Length)
              CompressionType = zstd
              AdditionalFields = extra
              Extensions = extensions
              BackingFileName = backing }
    }
