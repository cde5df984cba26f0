/// The qcow version 1 header (block/qcow.c QCowHeader), 48 bytes, big-endian:
///
/// | offset | size | field               |
/// |      0 |    4 | magic               |
/// |      4 |    4 | version (1)         |
/// |      8 |    8 | backing_file_offset |
/// |     16 |    4 | backing_file_size   |
/// |     20 |    4 | mtime               |
/// |     24 |    8 | size                |
/// |     32 |    1 | cluster_bits        |
/// |     33 |    1 | l2_bits             |
/// |     34 |    2 | padding             |
/// |     36 |    4 | crypt_method        |
/// |     40 |    8 | l1_table_offset     |
namespace Qcow.Format

open System
open System.Text

type internal QcowV1Header =
    { BackingFileOffset: uint64
      BackingFileSize: uint32
      MTime: uint32
      Size: uint64
      ClusterBits: int
      L2Bits: int
      CryptMethod: uint32
      L1TableOffset: uint64 }

module internal QcowV1Header =
    let geometry (h: QcowV1Header) = Geometry.qcowV1 h.ClusterBits h.L2Bits

    let entryFormat (h: QcowV1Header) =
        { Version = 1
          ClusterBits = h.ClusterBits
          HasExternalData = false }

    /// L1 entries: ceil(size / 2^(cluster_bits + l2_bits)); v1 does not store it.
    let l1Size (h: QcowV1Header) = Geometry.l1EntriesFor (geometry h) h.Size

    /// Decodes and validates the 48-byte header with qcow_open's checks, including the ones
    /// added for CVE-2014-0222 and CVE-2014-0223 (L1 size and image size overflows).
    let decode (bytes: ReadOnlySpan<byte>) : Result<QcowV1Header, FormatError> =
        if bytes.Length < Limits.HeaderV1Length then
            Error(Truncated(Structure.Header, 0UL, uint64 Limits.HeaderV1Length))
        elif BigEndian.u32 bytes 0 <> Limits.Magic then
            Error(BadMagic(BigEndian.u32 bytes 0))
        elif BigEndian.u32 bytes 4 <> 1u then
            Error(UnsupportedVersion("qcow", BigEndian.u32 bytes 4))
        else
            let h =
                { BackingFileOffset = BigEndian.u64 bytes 8
                  BackingFileSize = BigEndian.u32 bytes 16
                  MTime = BigEndian.u32 bytes 20
                  Size = BigEndian.u64 bytes 24
                  ClusterBits = int bytes[32]
                  L2Bits = int bytes[33]
                  CryptMethod = BigEndian.u32 bytes 36
                  L1TableOffset = BigEndian.u64 bytes 40 }

            result {
                do! check (h.Size > 1UL) (OutsideQemuLimit(Structure.Header, 24UL, "size", h.Size, "Image size is too small (must be at least 2 bytes)"))
                do!
                    check
                        (h.ClusterBits >= Limits.MinClusterBitsV1 && h.ClusterBits <= Limits.MaxClusterBitsV1)
                        (OutsideQemuLimit(Structure.Header, 32UL, "cluster_bits", uint64 h.ClusterBits, "Cluster size must be between 512 and 64k"))
                do!
                    check
                        (h.L2Bits >= Limits.MinL2BitsV1 && h.L2Bits <= Limits.MaxL2BitsV1)
                        (OutsideQemuLimit(Structure.Header, 33UL, "l2_bits", uint64 h.L2Bits, "L2 table size must be between 512 and 64k"))
                do!
                    check
                        (h.CryptMethod <= 1u)
                        (OutsideQemuLimit(Structure.Header, 36UL, "crypt_method", uint64 h.CryptMethod, "invalid encryption method in qcow header"))
                let shift = h.ClusterBits + h.L2Bits
                do!
                    check
                        (h.Size <= UInt64.MaxValue - (1UL <<< shift))
                        (OutsideQemuLimit(Structure.Header, 24UL, "size", h.Size, "Image too large"))
                do!
                    check
                        (l1Size h <= uint64 (Int32.MaxValue / 8))
                        (OutsideQemuLimit(Structure.Header, 24UL, "size", h.Size, "Image too large"))
                do!
                    check
                        (h.L1TableOffset <= Limits.MaxFileOffset - l1Size h * 8UL)
                        (FieldOutOfRange(Structure.L1Table, 40UL, "l1_table_offset", h.L1TableOffset, "inside a file"))
                do!
                    check
                        (h.BackingFileOffset = 0UL || h.BackingFileSize <= Limits.MaxBackingNameLength)
                        (OutsideQemuLimit(Structure.Header, 16UL, "backing_file_size", uint64 h.BackingFileSize, "Backing file name too long"))
                do!
                    check
                        (h.BackingFileOffset <= Limits.MaxFileOffset - uint64 h.BackingFileSize)
                        (FieldOutOfRange(Structure.Header, 8UL, "backing_file_offset", h.BackingFileOffset, "inside a file"))
                return h
            }

    /// The 48 header bytes.
    let encode (h: QcowV1Header) : byte[] =
        let b = Array.zeroCreate Limits.HeaderV1Length
        let s = Span b
        BigEndian.putU32 s 0 Limits.Magic
        BigEndian.putU32 s 4 1u
        BigEndian.putU64 s 8 h.BackingFileOffset
        BigEndian.putU32 s 16 h.BackingFileSize
        BigEndian.putU32 s 20 h.MTime
        BigEndian.putU64 s 24 h.Size
        b[32] <- byte h.ClusterBits
        b[33] <- byte h.L2Bits
        BigEndian.putU32 s 36 h.CryptMethod
        BigEndian.putU64 s 40 h.L1TableOffset
        b

    /// The layout qemu-img create -f qcow writes: 4 KiB clusters and 512-entry L2 tables, or
    /// 512-byte clusters and 4096-entry L2 tables with a backing file; the backing name right
    /// after the header; the L1 table 8-byte aligned after that, zero-filled in whole sectors.
    /// Returns the header and the file's initial length.
    let forCreate (size: uint64) (backingName: string option) =
        let nameBytes = backingName |> Option.map Encoding.UTF8.GetBytes
        let nameLength = nameBytes |> Option.map Array.length |> Option.defaultValue 0
        let clusterBits, l2Bits = if backingName.IsSome then 9, 12 else 12, 9
        let l1Offset = uint64 ((Limits.HeaderV1Length + nameLength + 7) &&& ~~~7)

        let h =
            { BackingFileOffset = if backingName.IsSome then uint64 Limits.HeaderV1Length else 0UL
              BackingFileSize = uint32 nameLength
              MTime = 0u
              Size = size
              ClusterBits = clusterBits
              L2Bits = l2Bits
              CryptMethod = 0u
              L1TableOffset = l1Offset }

        let l1Bytes = l1Size h * 8UL
        h, nameBytes, l1Offset + ((l1Bytes + 511UL) &&& ~~~511UL)
