/// Decoding and validating a qcow2 header and its extensions from the image's first cluster,
/// with QEMU's limits (qcow2_do_open, qcow2_read_extensions, qcow2_validate_table).
module internal Qcow.Format.HeaderDecode

open System
open System.Text

let private u16 (b: byte[]) at = BigEndian.u16 (ReadOnlySpan b) at
let private u32 (b: byte[]) at = BigEndian.u32 (ReadOnlySpan b) at
let private u64 (b: byte[]) at = BigEndian.u64 (ReadOnlySpan b) at
/// A name stored in the image, read as QEMU reads it: as a C string, ending at the first NUL.
let text (b: byte[]) at length =
    let nul = Array.IndexOf(b, 0uy, at, length)
    Encoding.UTF8.GetString(b, at, (if nul < 0 then length else nul - at))

/// The feature name table's 48-byte entries; a last entry the extension cuts short is read as
/// QEMU reads it, padded with zeros.
let private featureNames (b: byte[]) at length =
    let data = Array.zeroCreate<byte> ((length + 47) / 48 * 48)
    Array.blit b at data 0 length

    [ for e in 0..48 .. data.Length - 48 ->
          let name = ReadOnlySpan(data, e + 2, 46)
          let used = match name.IndexOf 0uy with -1 -> 46 | n -> n
          { Kind = LanguagePrimitives.EnumOfValue data[e]
            Bit = data[e + 1]
            Name = text data (e + 2) used } ]

let private decodeExtension (h: Header) (b: byte[]) (at: int) (magic: uint32) (length: int) =
    let where = uint64 (at - 8)

    match magic with
    | Header.BackingFormatMagic ->
        if length > Limits.MaxBackingFormatLength then
            Error(FieldOutOfRange(Structure.HeaderExtension, where, "backing format length", uint64 length, "below 16"))
        else
            Ok(BackingFormat(text b at length))
    | Header.FeatureNameTableMagic -> Ok(FeatureNameTable(featureNames b at length))
    | Header.BitmapsMagic ->
        if length <> 24 then
            Error(Inconsistent(Structure.HeaderExtension, where, "the bitmaps extension must be 24 bytes"))
        else
            Ok(Bitmaps(u32 b at, u32 b (at + 4), u64 b (at + 8), u64 b (at + 16)))
    | Header.FullDiskEncryptionMagic ->
        if length <> 16 then
            Error(Inconsistent(Structure.HeaderExtension, where, "the encryption header pointer must be 16 bytes"))
        elif h.CryptMethod <> 2u then
            Error(Inconsistent(Structure.HeaderExtension, where, "encryption header pointer without LUKS encryption"))
        elif u64 b at &&& (Header.clusterSize h - 1UL) <> 0UL then
            Error(Misaligned(Structure.HeaderExtension, where + 8UL, u64 b at))
        else
            Ok(FullDiskEncryption(u64 b at, u64 b (at + 8)))
    | Header.ExternalDataFileMagic -> Ok(ExternalDataFile(text b at length))
    | _ -> Ok(Unknown(magic, b[at .. at + length - 1]))

/// Header extensions from `start` up to `finish` (the backing name's offset, or the cluster end).
let rec private extensions (h: Header) (b: byte[]) (at: int) (finish: int) acc =
    if at >= finish || at + 8 > b.Length then
        Ok(List.rev acc)
    else
        let magic = u32 b at
        let length = u32 b (at + 4)

        if magic = 0u then
            Ok(List.rev acc)
        elif uint64 (at + 8) + uint64 length > uint64 finish then
            Error(ExtensionTooLarge(magic, uint64 at, length))
        else
            match decodeExtension h b (at + 8) magic (int length) with
            | Error e -> Error e
            | Ok ext -> extensions h b (at + 8 + ((int length + 7) &&& ~~~7)) finish (ext :: acc)

let private fixedFields (b: byte[]) (available: int) =
    let v = u32 b HeaderFields.Version
    let v3 = v >= 3u
    let headerLength = if v3 then u32 b HeaderFields.HeaderLength else uint32 Limits.HeaderV2Length

    { Version = int v
      BackingFileOffset = u64 b HeaderFields.BackingFileOffset
      BackingFileSize = u32 b HeaderFields.BackingFileSize
      ClusterBits = int (min (u32 b HeaderFields.ClusterBits) 64u)
      Size = u64 b HeaderFields.Size
      CryptMethod = u32 b HeaderFields.CryptMethod
      L1Size = u32 b HeaderFields.L1Size
      L1TableOffset = u64 b HeaderFields.L1TableOffset
      RefcountTableOffset = u64 b HeaderFields.RefcountTableOffset
      RefcountTableClusters = u32 b HeaderFields.RefcountTableClusters
      SnapshotCount = u32 b HeaderFields.SnapshotCount
      SnapshotsOffset = u64 b HeaderFields.SnapshotsOffset
      IncompatibleFeatures = if v3 then u64 b HeaderFields.IncompatibleFeatures else 0UL
      CompatibleFeatures = if v3 then u64 b HeaderFields.CompatibleFeatures else 0UL
      AutoclearFeatures = if v3 then u64 b HeaderFields.AutoclearFeatures else 0UL
      RefcountOrder = if v3 then int (min (u32 b HeaderFields.RefcountOrder) 64u) else 4
      HeaderLength = headerLength
      CompressionType = if v3 && headerLength > uint32 HeaderFields.CompressionType && available > HeaderFields.CompressionType then b[HeaderFields.CompressionType] else 0uy
      AdditionalFields =
        if v3 && headerLength > uint32 Limits.HeaderV3Length && headerLength <= uint32 b.Length then
            b[Limits.HeaderV3Length .. int headerLength - 1]
        else
            [||]
      Extensions = []
      BackingFileName = None }

/// A table the header places (qcow2_validate_table): cluster-aligned, and ending before 2^63;
/// refused in QEMU's words, "<name> offset invalid".
let private table (h: Header) structure name (fieldAt: uint64) (offset: uint64) (bytes: uint64) =
    check
        (offset &&& (Header.clusterSize h - 1UL) = 0UL && offset <= Limits.MaxFileOffset - bytes)
        (OutsideQemuLimit(structure, fieldAt, "offset", offset, name + " offset invalid"))

let private validate (h: Header) (available: int) =
    let cs = Header.clusterSize h

    result {
        do!
            check
                (h.HeaderLength >= uint32 Limits.HeaderV3MinLength && uint64 h.HeaderLength <= cs || h.Version = 2)
                (OutsideQemuLimit(
                    Structure.Header,
                    uint64 HeaderFields.HeaderLength,
                    "header_length",
                    uint64 h.HeaderLength,
                    if uint64 h.HeaderLength > cs then "qcow2 header exceeds cluster size" else "qcow2 header too short"
                ))
        do! check (available >= int h.HeaderLength) (Truncated(Structure.Header, 0UL, uint64 h.HeaderLength))
        do!
            check
                (h.RefcountOrder <= Limits.MaxRefcountOrder)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.RefcountOrder, "refcount_order", uint64 h.RefcountOrder, "Reference count entry width too large; may not exceed 64 bits"))
        do!
            check
                (h.CryptMethod <= 2u)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.CryptMethod, "crypt_method", uint64 h.CryptMethod, sprintf "Unsupported encryption method: %d" h.CryptMethod))
        do!
            check
                (h.BackingFileOffset <= cs)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.BackingFileOffset, "backing_file_offset", h.BackingFileOffset, "Invalid backing file offset"))
        do!
            check
                (h.BackingFileOffset = 0UL
                 || h.BackingFileSize <= Limits.MaxBackingNameLength
                    && uint64 h.BackingFileSize <= cs - h.BackingFileOffset)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.BackingFileSize, "backing_file_size", uint64 h.BackingFileSize, "Backing file name too long"))
        do!
            check
                (h.RefcountTableClusters <> 0u)
                (FieldOutOfRange(Structure.Header, uint64 HeaderFields.RefcountTableClusters, "refcount_table_clusters", 0UL, "at least 1"))
        let reftableBytes = uint64 h.RefcountTableClusters <<< h.ClusterBits
        do!
            check
                (reftableBytes <= Limits.MaxRefcountTableBytes)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.RefcountTableClusters, "refcount_table_clusters", uint64 h.RefcountTableClusters, "Reference count table too large"))
        do! table h Structure.RefcountTable "Reference count table" 48UL h.RefcountTableOffset reftableBytes
        do!
            check
                (h.SnapshotCount <= Limits.MaxSnapshots)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.SnapshotCount, "nb_snapshots", uint64 h.SnapshotCount, "Snapshot table too large"))
        // QEMU counts the table as nb_snapshots fixed parts of 40 bytes (qcow2_validate_table).
        do! table h Structure.SnapshotTable "Snapshot table" 64UL h.SnapshotsOffset (uint64 h.SnapshotCount * 40UL)
        let l1Bytes = uint64 h.L1Size * 8UL
        do!
            check
                (l1Bytes <= Limits.MaxL1Bytes)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.L1Size, "l1_size", uint64 h.L1Size, "Active L1 table too large"))
        let needed = Geometry.l1EntriesFor (Header.geometry h) h.Size
        do!
            check
                (needed <= uint64 Int32.MaxValue)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.Size, "size", h.Size, "Image is too big"))
        do!
            check
                (uint64 h.L1Size >= needed)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.L1Size, "l1_size", uint64 h.L1Size, "L1 table is too small"))
        do! table h Structure.L1Table "Active L1 table" 40UL h.L1TableOffset l1Bytes
        let compressionField = h.HeaderLength > uint32 HeaderFields.CompressionType
        do!
            check
                (h.CompressionType <= 1uy)
                (FieldOutOfRange(Structure.Header, uint64 HeaderFields.CompressionType, "compression_type", uint64 h.CompressionType, "0 (deflate) or 1 (zstd)"))
        do!
            check
                ((h.CompressionType <> 0uy) = (h.IncompatibleFeatures &&& Header.CompressionTypeBit <> 0UL)
                 || not compressionField && h.IncompatibleFeatures &&& Header.CompressionTypeBit = 0UL)
                (Inconsistent(Structure.Header, uint64 HeaderFields.CompressionType, "compression_type and the compression type feature bit disagree"))
        do!
            check
                (h.AutoclearFeatures &&& Header.RawExternalDataBit = 0UL
                 || h.IncompatibleFeatures &&& Header.ExternalDataBit <> 0UL)
                (Inconsistent(Structure.Header, uint64 HeaderFields.AutoclearFeatures, "raw external data needs an external data file"))
    }

/// What QEMU names the given incompatible bits by: the image's own feature name table, in table
/// order up to its first nameless entry, then one "Unknown incompatible feature: MASK" for the
/// bits it does not name (an image without a table names none).
let featureNamesFor (h: Header) (bits: uint64) =
    let table =
        h.Extensions
        |> List.tryPick (function FeatureNameTable t -> Some t | _ -> None)
        |> Option.defaultValue []
        |> List.takeWhile (fun f -> f.Name <> "")

    let named, rest =
        table
        |> List.fold
            (fun (names, left) f ->
                let bit = 1UL <<< int f.Bit
                if f.Kind = FeatureKind.Incompatible && f.Bit < 64uy && left &&& bit <> 0UL then f.Name :: names, left &&& ~~~bit
                else names, left)
            ([], bits)

    List.rev named @ (if rest <> 0UL then [ sprintf "Unknown incompatible feature: %x" rest ] else [])

/// Decodes the first cluster of an image. `bytes` holds the first cluster (zero-filled past the
/// end of the file, as QEMU reads it); `available` is how many of them the file really has.
let decode (bytes: byte[]) (available: int) : Result<Header, FormatError> =
    result {
        do! check (available >= Limits.HeaderV2Length && bytes.Length >= Limits.HeaderV3Length) (Truncated(Structure.Header, 0UL, uint64 Limits.HeaderV2Length))
        do! check (u32 bytes HeaderFields.Magic = Limits.Magic) (BadMagic(u32 bytes HeaderFields.Magic))
        let v = u32 bytes HeaderFields.Version
        do! check (v = 2u || v = 3u) (UnsupportedVersion("qcow2", v))
        let bits = u32 bytes HeaderFields.ClusterBits
        do!
            check
                (bits >= uint32 Limits.MinClusterBits && bits <= uint32 Limits.MaxClusterBits)
                (OutsideQemuLimit(Structure.Header, uint64 HeaderFields.ClusterBits, "cluster_bits", uint64 bits, sprintf "Unsupported cluster size: 2^%d" bits))
        do! check (v = 2u || available >= Limits.HeaderV3MinLength) (Truncated(Structure.Header, 0UL, uint64 Limits.HeaderV3MinLength))
        let h = fixedFields bytes available
        do! check (int (Header.clusterSize h) <= bytes.Length) (Truncated(Structure.Header, 0UL, Header.clusterSize h))
        do! validate h available
        let finish = if h.BackingFileOffset <> 0UL then int h.BackingFileOffset else int (Header.clusterSize h)
        let! exts = extensions h bytes (int h.HeaderLength) finish []
        let h = { h with Extensions = exts }
        let unknown = h.IncompatibleFeatures &&& ~~~Limits.KnownIncompatibleMask
        do! check (unknown = 0UL) (UnsupportedFeatures(72UL, unknown, featureNamesFor h unknown))
        let name =
            if h.BackingFileOffset = 0UL then None
            else Some(text bytes (int h.BackingFileOffset) (int h.BackingFileSize))
        return { h with BackingFileName = name }
    }
