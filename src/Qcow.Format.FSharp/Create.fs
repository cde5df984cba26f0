/// The layout of a new qcow2 image, as qemu-img create lays it out: header cluster, refcount
/// table, refcount block(s), then the L1 table; every one of them refcounted.
module internal Qcow.Format.Create

/// What a new qcow2 image is made of.
type Qcow2Options =
    { Size: uint64
      Version: int
      ClusterBits: int
      RefcountOrder: int
      LazyRefcounts: bool
      CompressionType: byte
      BackingFile: string option
      BackingFormat: string option
      /// 16-byte L2 entries with 32 subclusters each (compat 1.1, clusters of 16 KiB or more).
      ExtendedL2: bool
      /// An external data file holds the guest data (compat 1.1).
      DataFile: string option
      /// The data file is a raw image of the guest: every cluster mapped to its own offset.
      DataFileRaw: bool }

/// The new image: its header, the writes that make it, and the file's length.
type NewImage =
    { Header: Header
      Writes: (uint64 * byte[]) list
      FileLength: uint64 }

/// qemu-img's defaults: compat 1.1, 64 KiB clusters, 16-bit refcounts, deflate.
let defaults size =
    { Size = size
      Version = 3
      ClusterBits = 16
      RefcountOrder = 4
      LazyRefcounts = false
      CompressionType = 0uy
      BackingFile = None
      BackingFormat = None
      ExtendedL2 = false
      DataFile = None
      DataFileRaw = false }

let private geometryOf (o: Qcow2Options) =
    if o.ExtendedL2 then Geometry.qcow2Extended o.ClusterBits else Geometry.qcow2 o.ClusterBits

/// The largest virtual size QEMU allows: the L1 table is at most 32 MiB.
let maxSize clusterBits =
    let g = Geometry.qcow2 clusterBits
    (Limits.MaxL1Bytes / 8UL) * Geometry.bytesPerL1Entry g

let private validate (o: Qcow2Options) =
    result {
        do! check (o.Version = 2 || o.Version = 3) "compat must be 0.10 or 1.1"
        do!
            check
                (o.ClusterBits >= Limits.MinClusterBits && o.ClusterBits <= Limits.MaxClusterBits)
                "Cluster size must be a power of two between 512 and 2048k"
        do! check (o.RefcountOrder >= 0 && o.RefcountOrder <= Limits.MaxRefcountOrder) "Refcount width must be a power of two and may not exceed 64 bits"
        do! check (o.Version = 3 || o.RefcountOrder = 4) "Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)"
        do! check (o.Version = 3 || not o.LazyRefcounts) "Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)"
        do! check (o.Version = 3 || o.CompressionType = 0uy) "zstd compression needs compat=1.1"
        do! check (o.CompressionType <= 1uy) "compression_type must be zlib or zstd"
        do! check (not o.DataFileRaw || o.DataFile.IsSome) "data-file-raw requires data-file"
        do! check (o.DataFile.IsNone || o.Version = 3) "data-file requires compat=1.1"
        do! check (not (o.DataFileRaw && o.ExtendedL2)) "data_file_raw with extended_l2 is not supported by qcow yet"
        do! check (not o.ExtendedL2 || o.Version = 3) "Extended L2 entries are only supported with compatibility level 1.1 and above"
        do! check (not o.ExtendedL2 || o.ClusterBits >= 14) "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes"
        do! check (o.Size <= (Limits.MaxL1Bytes / 8UL) * Geometry.bytesPerL1Entry (geometryOf o)) "The image size is too large for file format 'qcow2' (try using a larger cluster size)"
        do!
            check
                (o.BackingFormat.IsNone || o.BackingFormat.Value.Length <= Limits.MaxBackingFormatLength)
                "the backing format name is too long"
    }

/// Lays out a new image; the error says which option is wrong.
let qcow2 (o: Qcow2Options) : Result<NewImage, string> =
    match validate o with
    | Error e -> Error e
    | Ok() ->
        let g = geometryOf o
        let rg = { ClusterBits = o.ClusterBits; RefcountOrder = o.RefcountOrder }
        let cs = Geometry.clusterSize g
        let l1Size = Geometry.l1EntriesFor g o.Size
        let l1Clusters = Geometry.clustersFor g (l1Size * 8UL)
        // A raw data file is mapped whole: an L2 table for every L1 entry, after the L1 table.
        let l2Tables = if o.DataFileRaw then l1Size else 0UL

        // Header, refcount table (t clusters), refcount blocks (b), L1: grow t and b until the
        // blocks describe every cluster in use and the table holds every block.
        let rec layout t b =
            let used = 1UL + t + b + l1Clusters + l2Tables
            let b' = (used + Refcount.entriesPerBlock rg - 1UL) / Refcount.entriesPerBlock rg
            let t' = max 1UL ((b' * 8UL + cs - 1UL) / cs)
            if b' = b && t' = t then t, b, used else layout t' b'

        let tableClusters, blocks, used = layout 1UL 1UL
        let l1Offset = (1UL + tableClusters + blocks) * cs

        let header =
            Header.inQemuOrder
                { Version = o.Version
                  BackingFileOffset = 0UL
                  BackingFileSize = 0u
                  ClusterBits = o.ClusterBits
                  Size = o.Size
                  CryptMethod = 0u
                  L1Size = uint32 l1Size
                  L1TableOffset = l1Offset
                  RefcountTableOffset = cs
                  RefcountTableClusters = uint32 tableClusters
                  SnapshotCount = 0u
                  SnapshotsOffset = 0UL
                  IncompatibleFeatures =
                    (if o.CompressionType <> 0uy then Header.CompressionTypeBit else 0UL)
                    ||| (if o.ExtendedL2 then Header.ExtendedL2Bit else 0UL)
                    ||| (if o.DataFile.IsSome then Header.ExternalDataBit else 0UL)
                  CompatibleFeatures = if o.LazyRefcounts then Header.LazyRefcountsBit else 0UL
                  AutoclearFeatures = if o.DataFileRaw then Header.RawExternalDataBit else 0UL
                  RefcountOrder = o.RefcountOrder
                  HeaderLength = uint32 (if o.Version = 3 then Limits.HeaderV3Length else Limits.HeaderV2Length)
                  CompressionType = o.CompressionType
                  AdditionalFields = [||]
                  Extensions =
                    (o.BackingFormat |> Option.map BackingFormat |> Option.toList)
                    @ (o.DataFile |> Option.map ExternalDataFile |> Option.toList)
                  BackingFileName = o.BackingFile }

        match HeaderEncode.encode header with
        | Error e -> Error(FormatError.describe e)
        | Ok first ->
            let table = Array.zeroCreate<byte> (int (tableClusters * cs))

            for i in 0UL .. blocks - 1UL do
                BigEndian.putU64 (System.Span table) (int i * 8) ((1UL + tableClusters + i) * cs)

            let blockBytes = Array.zeroCreate<byte> (int (blocks * cs))

            for c in 0UL .. used - 1UL do
                let perBlock = Refcount.entriesPerBlock rg
                let block = System.Span(blockBytes, int ((c / perBlock) * cs), int cs)
                Refcount.set o.RefcountOrder block (int (c % perBlock)) 1UL

            let l1AndL2 = l1Offset + l1Clusters * cs
            // The L1 table is written even when it is all zeros, as qemu-img writes it: its space
            // on the file is taken now, not by the first flush that updates it (on a full disk).
            let l1 = Array.zeroCreate<byte> (int (l1Size * 8UL))
            let tableWrites =
                if not o.DataFileRaw then
                    [ l1Offset, l1 ]
                else
                    let entries = uint64 (Geometry.l2Entries g)
                    let l2 = Array.zeroCreate<byte> (int (l2Tables * cs))

                    for t in 0UL .. l2Tables - 1UL do
                        BigEndian.putU64 (System.Span l1) (int t * 8) ((l1AndL2 + t * cs) ||| L1Entry.CopiedFlag)

                        for e in 0UL .. entries - 1UL do
                            let guest = (t * entries + e) * cs
                            if guest < o.Size then
                                BigEndian.putU64 (System.Span l2) (int ((t * cs) + e * uint64 g.L2EntryBytes)) (guest ||| L2Entry.CopiedFlag)

                    [ l1Offset, l1; l1AndL2, l2 ]

            Ok
                { Header = header
                  Writes = [ 0UL, first; cs, table; (1UL + tableClusters) * cs, blockBytes ] @ tableWrites
                  FileLength = if o.DataFileRaw then l1AndL2 + l2Tables * cs else l1Offset + l1Size * 8UL }
