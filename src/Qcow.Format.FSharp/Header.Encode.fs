/// Encoding a qcow2 header, its extensions and the backing file name into the first cluster,
/// laid out as QEMU's qcow2_update_header lays it out.
module internal Qcow.Format.HeaderEncode

open System
open System.Text

let private extensionBytes ext =
    match ext with
    | BackingFormat f -> Header.BackingFormatMagic, Encoding.UTF8.GetBytes f
    | ExternalDataFile f -> Header.ExternalDataFileMagic, Encoding.UTF8.GetBytes f
    | FullDiskEncryption(offset, length) ->
        let data = Array.zeroCreate 16
        BigEndian.putU64 (Span data) 0 offset
        BigEndian.putU64 (Span data) 8 length
        Header.FullDiskEncryptionMagic, data
    | Bitmaps(count, reserved, size, offset) ->
        let data = Array.zeroCreate 24
        BigEndian.putU32 (Span data) 0 count
        BigEndian.putU32 (Span data) 4 reserved
        BigEndian.putU64 (Span data) 8 size
        BigEndian.putU64 (Span data) 16 offset
        Header.BitmapsMagic, data
    | FeatureNameTable names ->
        let data = Array.zeroCreate (48 * List.length names)

        names
        |> List.iteri (fun i f ->
            data[i * 48] <- byte f.Kind
            data[i * 48 + 1] <- f.Bit
            let name = Encoding.UTF8.GetBytes f.Name
            Array.blit name 0 data (i * 48 + 2) (min 46 name.Length))

        Header.FeatureNameTableMagic, data
    | Unknown(magic, data) -> magic, data

/// Bytes of the header proper: 72 for v2, 112 plus the preserved additional fields for v3.
let headerLength (h: Header) =
    if h.Version >= 3 then Limits.HeaderV3Length + h.AdditionalFields.Length else Limits.HeaderV2Length

/// The whole first cluster for a header: fixed fields, extensions in list order, the end
/// marker, then the backing file name. Fails when it does not fit in one cluster.
/// backing_file_offset, backing_file_size and header_length are derived, not taken from `h`.
let encode (h: Header) : Result<byte[], FormatError> =
    let cs = int (Header.clusterSize h)
    let exts = h.Extensions |> List.map extensionBytes
    let length = headerLength h
    let extBytes = exts |> List.sumBy (fun (_, d) -> 8 + ((d.Length + 7) &&& ~~~7))
    let name = h.BackingFileName |> Option.map Encoding.UTF8.GetBytes
    let nameAt = length + extBytes + 8
    let total = nameAt + (name |> Option.map Array.length |> Option.defaultValue 0)

    if total > cs then
        Error(Inconsistent(Structure.Header, 0UL, sprintf "header, extensions and backing name need %d bytes, more than one cluster" total))
    else
        let b = Array.zeroCreate<byte> cs
        let s = Span b
        BigEndian.putU32 s HeaderFields.Magic Limits.Magic
        BigEndian.putU32 s HeaderFields.Version (uint32 h.Version)

        match name with
        | Some n ->
            BigEndian.putU64 s HeaderFields.BackingFileOffset (uint64 nameAt)
            BigEndian.putU32 s HeaderFields.BackingFileSize (uint32 n.Length)
            Array.blit n 0 b nameAt n.Length
        | None -> ()

        BigEndian.putU32 s HeaderFields.ClusterBits (uint32 h.ClusterBits)
        BigEndian.putU64 s HeaderFields.Size h.Size
        BigEndian.putU32 s HeaderFields.CryptMethod h.CryptMethod
        BigEndian.putU32 s HeaderFields.L1Size h.L1Size
        BigEndian.putU64 s HeaderFields.L1TableOffset h.L1TableOffset
        BigEndian.putU64 s HeaderFields.RefcountTableOffset h.RefcountTableOffset
        BigEndian.putU32 s HeaderFields.RefcountTableClusters h.RefcountTableClusters
        BigEndian.putU32 s HeaderFields.SnapshotCount h.SnapshotCount
        BigEndian.putU64 s HeaderFields.SnapshotsOffset h.SnapshotsOffset

        if h.Version >= 3 then
            BigEndian.putU64 s HeaderFields.IncompatibleFeatures h.IncompatibleFeatures
            BigEndian.putU64 s HeaderFields.CompatibleFeatures h.CompatibleFeatures
            BigEndian.putU64 s HeaderFields.AutoclearFeatures h.AutoclearFeatures
            BigEndian.putU32 s HeaderFields.RefcountOrder (uint32 h.RefcountOrder)
            BigEndian.putU32 s HeaderFields.HeaderLength (uint32 length)
            b[HeaderFields.CompressionType] <- h.CompressionType
            Array.blit h.AdditionalFields 0 b Limits.HeaderV3Length h.AdditionalFields.Length

        let mutable at = length

        for magic, data in exts do
            BigEndian.putU32 s at magic
            BigEndian.putU32 s (at + 4) (uint32 data.Length)
            Array.blit data 0 b (at + 8) data.Length
            at <- at + 8 + ((data.Length + 7) &&& ~~~7)

        Ok b

/// Where the refcount table's offset and cluster count sit: QEMU switches tables with one
/// 12-byte write there.
[<Literal>]
let RefcountTableFieldsOffset = HeaderFields.RefcountTableOffset

/// The 12 bytes naming a refcount table: offset (u64) and clusters (u32).
let refcountTableFields (offset: uint64) (clusters: uint32) =
    let b = Array.zeroCreate 12
    BigEndian.putU64 (Span b) 0 offset
    BigEndian.putU32 (Span b) 8 clusters
    b

/// Where autoclear_features sits in a v3 header.
[<Literal>]
let AutoclearFieldOffset = HeaderFields.AutoclearFeatures

/// Where incompatible_features sits in a v3 header.
[<Literal>]
let IncompatibleFieldOffset = HeaderFields.IncompatibleFeatures

/// One 8-byte feature field.
let featureField (value: uint64) =
    let b = Array.zeroCreate 8
    BigEndian.putU64 (Span b) 0 value
    b
