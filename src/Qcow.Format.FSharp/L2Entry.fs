/// L2 table entries: the raw 64-bit value kept apart from what it means (qcow2.rst "Cluster
/// mapping", QEMU's qcow2_get_cluster_type; block/qcow.c for v1).
///
/// qcow2 standard entry:  bit 0 ZERO | 1–8 reserved | 9–55 host cluster offset |
///                        56–61 reserved | 62 COMPRESSED | 63 COPIED
/// qcow2 compressed:      bits 0…x−1 host byte offset | x…61 additional 512-byte sectors,
///                        x = 62 − (cluster_bits − 8)
/// qcow v1:               bit 63 COMPRESSED; normal = byte offset; compressed = byte offset in
///                        bits 0…62−cluster_bits, byte length in the cluster_bits bits above.
/// Extended L2 entries (a second word with the subcluster bitmap) get their own cases later.
namespace Qcow.Format

/// How an image stores its L2 entries.
[<Struct>]
type internal EntryFormat =
    { Version: int
      ClusterBits: int
      HasExternalData: bool }

/// What an L2 entry says about one guest cluster (a struct: classifying allocates nothing).
[<Struct>]
type internal L2Mapping =
    /// Nothing here: read the backing file, or zeros without one.
    | Unallocated
    /// Reads as zeros; no host cluster (v3 only).
    | ZeroPlain
    /// Reads as zeros; the host cluster stays allocated (v3 only).
    | ZeroAllocated of ZeroHost: uint64 * ZeroCopied: bool
    /// Guest data at a cluster-aligned host offset; COPIED means its refcount is exactly 1.
    | Normal of Host: uint64 * Copied: bool
    /// A compressed stream: its host byte offset and the bytes to read from there.
    | Compressed of StreamHost: uint64 * StreamLength: uint32

/// An entry's kind by its flags alone, as QEMU's check sees it (qcow2_get_cluster_type).
type internal ClusterType =
    | Unallocated = 0
    | ZeroPlain = 1
    | ZeroAllocated = 2
    | Normal = 3
    | Compressed = 4

/// Why an L2 entry cannot be used.
type internal L2Problem =
    | ZeroFlagBeforeVersion3
    | MisalignedHostOffset
    | CompressedWithExternalData
    /// A subcluster both allocated and zero, or allocated where the cluster has no host offset.
    | InvalidSubclusterBitmap

module internal L2Entry =
    [<Literal>]
    let CopiedFlag = 0x8000000000000000UL

    [<Literal>]
    let CompressedFlag = 0x4000000000000000UL

    [<Literal>]
    let ZeroFlag = 1UL

    [<Literal>]
    let OffsetMask = 0x00fffffffffffe00UL

    [<Literal>]
    let StandardReservedMask = 0x3f000000000001feUL

    [<Literal>]
    let V1CompressedFlag = 0x8000000000000000UL

    /// Bits of a qcow2 compressed descriptor given to the host offset: 62 − (cluster_bits − 8).
    let compressedOffsetBits clusterBits = 62 - (clusterBits - 8)

    /// A qcow2 compressed entry's stream: host byte offset, and the bytes from there to the end
    /// of its last sector.
    let compressedStream clusterBits (entry: uint64) =
        let x = compressedOffsetBits clusterBits
        let host = entry &&& ((1UL <<< x) - 1UL)
        let sectors = ((entry >>> x) &&& ((1UL <<< (clusterBits - 8)) - 1UL)) + 1UL
        struct (host, uint32 (sectors * 512UL - (host &&& 511UL)))

    let private qcow2Compressed clusterBits (entry: uint64) =
        let struct (host, length) = compressedStream clusterBits entry
        Compressed(host, length)

    /// The kind of a qcow2 entry by its flags alone, whatever its alignment and reserved bits,
    /// as check needs it to report those. Bit 0 reads as ZERO in v2 images too, as in QEMU.
    let clusterType (format: EntryFormat) (entry: uint64) =
        if entry &&& CompressedFlag <> 0UL then
            ClusterType.Compressed
        elif entry &&& ZeroFlag <> 0UL then
            if entry &&& OffsetMask <> 0UL then ClusterType.ZeroAllocated else ClusterType.ZeroPlain
        elif entry &&& OffsetMask = 0UL && not (format.HasExternalData && entry &&& CopiedFlag <> 0UL) then
            ClusterType.Unallocated
        else
            ClusterType.Normal

    /// Reserved bits set in a standard (not compressed) qcow2 entry.
    let hasReservedBits (entry: uint64) =
        entry &&& CompressedFlag = 0UL && entry &&& StandardReservedMask <> 0UL

    let private classifyQcow2 (format: EntryFormat) (entry: uint64) =
        let copied = entry &&& CopiedFlag <> 0UL
        let host = entry &&& OffsetMask
        let aligned = host &&& ((1UL <<< format.ClusterBits) - 1UL) = 0UL

        if entry &&& CompressedFlag <> 0UL then
            if format.HasExternalData then
                Error CompressedWithExternalData
            else
                Ok(qcow2Compressed format.ClusterBits entry)
        elif entry &&& ZeroFlag <> 0UL then
            if format.Version < 3 then Error ZeroFlagBeforeVersion3
            elif host = 0UL then Ok ZeroPlain
            elif not aligned then Error MisalignedHostOffset
            else Ok(ZeroAllocated(host, copied))
        elif host = 0UL && not (format.HasExternalData && copied) then
            Ok Unallocated
        elif not aligned then
            Error MisalignedHostOffset
        else
            Ok(Normal(host, copied))

    let private classifyV1 (format: EntryFormat) (entry: uint64) =
        if entry &&& V1CompressedFlag <> 0UL then
            let shift = 63 - format.ClusterBits
            let length = (entry >>> shift) &&& ((1UL <<< format.ClusterBits) - 1UL)
            Ok(Compressed(entry &&& ((1UL <<< shift) - 1UL), uint32 length))
        elif entry = 0UL then Ok Unallocated
        elif entry &&& 511UL <> 0UL then Error MisalignedHostOffset
        else Ok(Normal(entry, true))

    /// Extended L2 entries (qcow2.rst "Extended L2 Entries"): 32 subclusters per cluster; in the
    /// entry's second word bit i says subcluster i is allocated, bit 32 + i that it reads as
    /// zeros (QEMU's qcow2_get_subcluster_type). The mapping of one subcluster; Normal and
    /// ZeroAllocated keep the cluster's host offset. The first word's bit 0 means nothing here.
    let subclusterMapping (format: EntryFormat) (entry: uint64) (bitmap: uint64) (index: int) =
        let host = entry &&& OffsetMask
        let copied = entry &&& CopiedFlag <> 0UL
        let allocated = (bitmap >>> index) &&& 1UL = 1UL
        let zero = (bitmap >>> (32 + index)) &&& 1UL = 1UL

        if entry &&& CompressedFlag <> 0UL then
            if bitmap = 0UL then Ok(qcow2Compressed format.ClusterBits entry) else Error InvalidSubclusterBitmap
        elif (bitmap >>> 32) &&& bitmap &&& 0xffffffffUL <> 0UL then
            Error InvalidSubclusterBitmap
        elif host = 0UL then
            if bitmap &&& 0xffffffffUL <> 0UL then Error InvalidSubclusterBitmap
            elif zero then Ok ZeroPlain
            else Ok Unallocated
        elif host &&& ((1UL <<< format.ClusterBits) - 1UL) <> 0UL then
            Error MisalignedHostOffset
        elif zero then
            Ok(ZeroAllocated(host, copied))
        elif allocated then
            Ok(Normal(host, copied))
        else
            Ok Unallocated

    /// What a raw L2 entry means.
    let classify (format: EntryFormat) (entry: uint64) =
        if format.Version = 1 then classifyV1 format entry else classifyQcow2 format entry

    /// The raw entry for a mapping; classify (ofMapping m) = m for every mapping the format
    /// can hold. Zero mappings in v1, and zero mappings before v3, are caller mistakes.
    let ofMapping (format: EntryFormat) (mapping: L2Mapping) =
        let copiedBit copied = if copied then CopiedFlag else 0UL

        match mapping with
        | Unallocated -> 0UL
        | _ when format.Version = 1 ->
            match mapping with
            | Normal(host, _) -> host
            | Compressed(host, length) -> V1CompressedFlag ||| (uint64 length <<< (63 - format.ClusterBits)) ||| host
            | _ -> invalidArg (nameof mapping) "qcow v1 has no zero clusters"
        | ZeroPlain
        | ZeroAllocated _ when format.Version < 3 -> invalidArg (nameof mapping) "zero clusters need qcow2 v3"
        | ZeroPlain -> ZeroFlag
        | ZeroAllocated(host, copied) -> host ||| ZeroFlag ||| copiedBit copied
        | Normal(host, copied) -> host ||| copiedBit copied
        | Compressed(host, length) ->
            let x = compressedOffsetBits format.ClusterBits
            let additionalSectors = (host + uint64 length - 1UL) / 512UL - host / 512UL
            CompressedFlag ||| (additionalSectors <<< x) ||| host

    /// Why an entry does not decode, in words.
    let private problemText problem =
        match problem with
        | ZeroFlagBeforeVersion3 -> "the ZERO flag needs version 3"
        | MisalignedHostOffset -> "its host offset is not cluster-aligned"
        | CompressedWithExternalData -> "a compressed cluster cannot lie in an external data file"
        | InvalidSubclusterBitmap -> "its subcluster bitmap is invalid"

    /// The format error for an L2 entry at `entryAt` that does not decode: its first word, the
    /// second of an extended entry, the guest offset it maps, and why.
    let invalid (entryAt: uint64) (guest: uint64) (entry: uint64) (bitmap: uint64 voption) (problem: L2Problem) =
        let value =
            match bitmap with
            | ValueSome b -> sprintf "0x%x / 0x%x" entry b
            | ValueNone -> sprintf "0x%x" entry

        Inconsistent(Structure.L2Table, entryAt, sprintf "entry %s for guest offset 0x%x is invalid: %s" value guest (problemText problem))

    /// Host clusters a compressed stream touches: first and last cluster index.
    let compressedClusters clusterBits (host: uint64) (length: uint32) =
        struct (host >>> clusterBits, (host + uint64 length - 1UL) >>> clusterBits)
