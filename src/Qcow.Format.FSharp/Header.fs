/// The qcow2 header (qcow2.rst "Header", "Header extensions") as a value.
///
/// | offset | size | field                    |  | offset | size | field (v3)            |
/// |      0 |    4 | magic                    |  |     72 |    8 | incompatible_features |
/// |      4 |    4 | version                  |  |     80 |    8 | compatible_features   |
/// |      8 |    8 | backing_file_offset      |  |     88 |    8 | autoclear_features    |
/// |     16 |    4 | backing_file_size        |  |     96 |    4 | refcount_order        |
/// |     20 |    4 | cluster_bits             |  |    100 |    4 | header_length         |
/// |     24 |    8 | size                     |  |    104 |    1 | compression_type      |
/// |     32 |    4 | crypt_method             |  |    105 |    7 | padding               |
/// |     36 |    4 | l1_size                  |
/// |     40 |    8 | l1_table_offset          |
/// |     48 |    8 | refcount_table_offset    |
/// |     56 |    4 | refcount_table_clusters  |
/// |     60 |    4 | nb_snapshots             |
/// |     64 |    8 | snapshots_offset         |
namespace Qcow.Format

/// Which feature bitfield a feature-name-table entry describes.
type internal FeatureKind =
    | Incompatible = 0uy
    | Compatible = 1uy
    | Autoclear = 2uy

/// One 48-byte entry of the feature name table.
type internal FeatureName =
    { Kind: FeatureKind
      Bit: byte
      Name: string }

/// A header extension: 4-byte type, 4-byte length, data padded to 8 bytes.
type internal HeaderExtension =
    /// 0xE2792ACA: the backing file's format name.
    | BackingFormat of format: string
    /// 0x6803F857: names for feature bits.
    | FeatureNameTable of names: FeatureName list
    /// 0x23852875: number of bitmaps, reserved word, directory size and offset (24 bytes).
    | Bitmaps of count: uint32 * reserved: uint32 * directorySize: uint64 * directoryOffset: uint64
    /// 0x0537BE77: where the LUKS header lives.
    | FullDiskEncryption of headerOffset: uint64 * headerLength: uint64
    /// 0x44415441: the external data file's name.
    | ExternalDataFile of name: string
    /// Any other type, kept byte for byte.
    | Unknown of magic: uint32 * data: byte[]

/// A decoded qcow2 header, v2 or v3; v2 images carry v3's defaults in the v3-only fields.
type internal Header =
    { Version: int
      BackingFileOffset: uint64
      BackingFileSize: uint32
      ClusterBits: int
      Size: uint64
      CryptMethod: uint32
      L1Size: uint32
      L1TableOffset: uint64
      RefcountTableOffset: uint64
      RefcountTableClusters: uint32
      SnapshotCount: uint32
      SnapshotsOffset: uint64
      IncompatibleFeatures: uint64
      CompatibleFeatures: uint64
      AutoclearFeatures: uint64
      RefcountOrder: int
      HeaderLength: uint32
      CompressionType: byte
      /// Header bytes from 112 up to header_length, which QEMU keeps when it rewrites the header.
      AdditionalFields: byte[]
      Extensions: HeaderExtension list
      BackingFileName: string option }

module internal Header =
    [<Literal>]
    let BackingFormatMagic = 0xE2792ACAu

    [<Literal>]
    let FeatureNameTableMagic = 0x6803F857u

    [<Literal>]
    let BitmapsMagic = 0x23852875u

    [<Literal>]
    let FullDiskEncryptionMagic = 0x0537BE77u

    [<Literal>]
    let ExternalDataFileMagic = 0x44415441u

    /// Incompatible bit 0: refcounts may be stale (lazy refcounts).
    [<Literal>]
    let DirtyBit = 1UL

    /// Incompatible bit 1: metadata may be corrupt.
    [<Literal>]
    let CorruptBit = 2UL

    /// Incompatible bit 2: guest data lives in an external data file.
    [<Literal>]
    let ExternalDataBit = 4UL

    /// Incompatible bit 3: compression_type is non-zero.
    [<Literal>]
    let CompressionTypeBit = 8UL

    /// Incompatible bit 4: extended L2 entries.
    [<Literal>]
    let ExtendedL2Bit = 16UL

    /// Compatible bit 0: lazy refcounts.
    [<Literal>]
    let LazyRefcountsBit = 1UL

    /// Autoclear bit 0: the bitmaps extension is consistent.
    [<Literal>]
    let BitmapsBit = 1UL

    /// Autoclear bit 1: the external data file is a valid raw image.
    [<Literal>]
    let RawExternalDataBit = 2UL

    /// The feature name table QEMU writes (v3, clusters over 4 KiB).
    let standardFeatureTable =
        [ { Kind = FeatureKind.Incompatible; Bit = 0uy; Name = "dirty bit" }
          { Kind = FeatureKind.Incompatible; Bit = 1uy; Name = "corrupt bit" }
          { Kind = FeatureKind.Incompatible; Bit = 2uy; Name = "external data file" }
          { Kind = FeatureKind.Incompatible; Bit = 3uy; Name = "compression type" }
          { Kind = FeatureKind.Incompatible; Bit = 4uy; Name = "extended L2 entries" }
          { Kind = FeatureKind.Compatible; Bit = 0uy; Name = "lazy refcounts" }
          { Kind = FeatureKind.Autoclear; Bit = 0uy; Name = "bitmaps" }
          { Kind = FeatureKind.Autoclear; Bit = 1uy; Name = "raw external data" } ]

    let clusterSize (h: Header) = 1UL <<< h.ClusterBits

    let geometry (h: Header) =
        if h.IncompatibleFeatures &&& ExtendedL2Bit <> 0UL then
            Geometry.qcow2Extended h.ClusterBits
        else
            Geometry.qcow2 h.ClusterBits

    let refcountGeometry (h: Header) =
        { ClusterBits = h.ClusterBits
          RefcountOrder = h.RefcountOrder }

    let entryFormat (h: Header) =
        { Version = h.Version
          ClusterBits = h.ClusterBits
          HasExternalData = h.IncompatibleFeatures &&& ExternalDataBit <> 0UL }

    let isDirty (h: Header) = h.IncompatibleFeatures &&& DirtyBit <> 0UL

    let isCorrupt (h: Header) = h.IncompatibleFeatures &&& CorruptBit <> 0UL

    let hasLazyRefcounts (h: Header) = h.CompatibleFeatures &&& LazyRefcountsBit <> 0UL

    // An extension that appears twice counts as QEMU counts it: the last one read wins.
    let backingFormat (h: Header) =
        h.Extensions |> List.rev |> List.tryPick (function BackingFormat f -> Some f | _ -> None)

    let externalDataFile (h: Header) =
        h.Extensions |> List.rev |> List.tryPick (function ExternalDataFile f -> Some f | _ -> None)

    /// The extensions in the order QEMU's qcow2_update_header writes them, with QEMU's feature
    /// table (v3, clusters over 4 KiB) in place of any other; unknown extensions keep their order.
    let inQemuOrder (h: Header) =
        let rank ext =
            match ext with
            | BackingFormat _ -> 0
            | ExternalDataFile _ -> 1
            | FullDiskEncryption _ -> 2
            | FeatureNameTable _ -> 3
            | Bitmaps _ -> 4
            | Unknown _ -> 5

        let others = h.Extensions |> List.filter (function FeatureNameTable _ -> false | _ -> true)

        let table =
            if h.Version >= 3 && h.ClusterBits > 12 then [ FeatureNameTable standardFeatureTable ] else []

        { h with Extensions = List.sortBy rank (others @ table) }

    /// The header without persistent bitmaps: no bitmaps extension, no autoclear bits.
    let withoutBitmaps (h: Header) =
        inQemuOrder
            { h with
                AutoclearFeatures = 0UL
                Extensions = h.Extensions |> List.filter (function Bitmaps _ -> false | _ -> true) }

    let withAutoclear (h: Header) (autoclear: uint64) = { h with AutoclearFeatures = autoclear }

    /// The header naming a bitmap directory of `count` bitmaps at `directoryOffset`, with the
    /// autoclear bit that keeps it valid; with none, no extension and the bit clear.
    let withBitmaps (h: Header) (count: uint32) (directoryBytes: uint64) (directoryOffset: uint64) =
        let others = h.Extensions |> List.filter (function Bitmaps _ -> false | _ -> true)

        if count = 0u then
            inQemuOrder { h with AutoclearFeatures = h.AutoclearFeatures &&& ~~~BitmapsBit; Extensions = others }
        else
            inQemuOrder
                { h with
                    AutoclearFeatures = h.AutoclearFeatures ||| BitmapsBit
                    Extensions = others @ [ Bitmaps(count, 0u, directoryBytes, directoryOffset) ] }

    /// The header after a resize: the virtual size and the L1 table that maps it.
    let resized (h: Header) (size: uint64) (l1Offset: uint64) (l1Size: uint32) =
        inQemuOrder { h with Size = size; L1TableOffset = l1Offset; L1Size = l1Size }

    /// The header after a resize that moved the L1 table and, to count its clusters, the refcounts.
    let resizedWithRefcounts (h: Header) (size: uint64) (l1Offset: uint64) (l1Size: uint32) (tableOffset: uint64) (tableClusters: uint32) =
        inQemuOrder
            { h with
                Size = size
                L1TableOffset = l1Offset
                L1Size = l1Size
                RefcountTableOffset = tableOffset
                RefcountTableClusters = tableClusters }

    /// The header after qemu-img rebase: the backing file's name and its format (the backing
    /// format extension), or neither.
    let withBacking (h: Header) (name: string option) (format: string option) =
        let others = h.Extensions |> List.filter (function BackingFormat _ -> false | _ -> true)
        let named = match format with Some f -> BackingFormat f :: others | None -> others
        inQemuOrder { h with BackingFileName = name; Extensions = named }

    /// The header as a read of an internal snapshot sees it: the snapshot's L1 table in place of
    /// the active one; the virtual size stays the image's, as QEMU's snapshot_load_tmp leaves it.
    let atSnapshot (h: Header) (l1Offset: uint64) (l1Size: uint32) =
        { h with L1TableOffset = l1Offset; L1Size = l1Size }

    /// The header naming a new metadata generation: the virtual size, the active L1 table, the
    /// snapshot table and the refcount structures that count them (Generation.fs).
    let withGeneration (h: Header) (size: uint64) (l1Offset: uint64) (l1Size: uint32) (snapshotsOffset: uint64) (snapshotCount: uint32) (tableOffset: uint64) (tableClusters: uint32) =
        inQemuOrder
            { h with
                Size = size
                L1TableOffset = l1Offset
                L1Size = l1Size
                SnapshotsOffset = snapshotsOffset
                SnapshotCount = snapshotCount
                RefcountTableOffset = tableOffset
                RefcountTableClusters = tableClusters }

    /// The header qemu-img amend writes: the version (2 or 3), lazy refcounts, the refcount order
    /// and the refcount table that goes with it; version 3's own fields go when going to 2.
    let amend (h: Header) (version: int) (lazyRefcounts: bool) (refcountOrder: int) (tableOffset: uint64) (tableClusters: uint32) =
        let v3 = version >= 3

        inQemuOrder
            { h with
                Version = version
                HeaderLength = if v3 then max h.HeaderLength (uint32 Limits.HeaderV3Length) else uint32 Limits.HeaderV2Length
                CompatibleFeatures =
                    if not v3 then 0UL
                    elif lazyRefcounts then h.CompatibleFeatures ||| LazyRefcountsBit
                    else h.CompatibleFeatures &&& ~~~LazyRefcountsBit
                AdditionalFields = if v3 then h.AdditionalFields else [||]
                RefcountOrder = refcountOrder
                RefcountTableOffset = tableOffset
                RefcountTableClusters = tableClusters }
