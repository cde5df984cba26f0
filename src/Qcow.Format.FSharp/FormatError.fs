/// Errors in untrusted image bytes, as values: each case carries what was wrong and where.
namespace Qcow.Format

/// The on-disk structure an error was found in.
type internal Structure =
    | Header = 0
    | HeaderExtension = 1
    | BackingFileName = 2
    | L1Table = 3
    | L2Table = 4
    | RefcountTable = 5
    | RefcountBlock = 6
    | CompressedCluster = 7
    | SnapshotTable = 8
    | DataCluster = 9
    | FeatureNameTable = 10

/// Something wrong in an image's bytes. Offsets are byte offsets in the image file.
type internal FormatError =
    /// The first four bytes are not 'QFI\xfb'.
    | BadMagic of found: uint32
    /// The version is not one the format reads (1 for qcow, 2 or 3 for qcow2).
    | UnsupportedVersion of format: string * version: uint32
    /// The file is in another format QEMU reads (vmdk, vdi, …), named as qemu-img names it.
    | ForeignFormat of name: string
    /// The file ends before a structure that must be there.
    | Truncated of structure: Structure * offset: uint64 * needed: uint64
    /// A header field is outside QEMU's limits; the text names the field and the limit.
    | FieldOutOfRange of structure: Structure * offset: uint64 * field: string * value: uint64 * limit: string
    /// A header field is outside QEMU's limits, refused in QEMU's words (what qemu-img prints).
    | OutsideQemuLimit of structure: Structure * offset: uint64 * field: string * value: uint64 * words: string
    /// A table or cluster that must be cluster-aligned is not.
    | Misaligned of structure: Structure * offset: uint64 * value: uint64
    /// A header extension runs past the end of the extension area.
    | ExtensionTooLarge of magic: uint32 * offset: uint64 * length: uint32
    /// The image uses incompatible features this reader does not support; names from the feature table.
    | UnsupportedFeatures of offset: uint64 * bits: uint64 * names: string list
    /// A table entry has reserved bits set.
    | ReservedBitsSet of structure: Structure * offset: uint64 * entry: uint64
    /// A table entry points at a host offset past the end of what the format allows or the file holds.
    | EntryOutOfRange of structure: Structure * offset: uint64 * entry: uint64
    /// A compressed cluster does not inflate to exactly one cluster.
    | BadCompressedData of offset: uint64 * reason: string
    /// The image combines fields in a way QEMU refuses; the text says which.
    | Inconsistent of structure: Structure * offset: uint64 * reason: string
    /// A table lies past the end of the file: it reads as zeros, but is never written.
    | TablePastEnd of structure: Structure * offset: uint64
    /// A table lies where no read reaches it (QEMU's read fails with EIO there).
    | Unreadable of structure: Structure * offset: uint64
    /// The image is not in the format the caller named.
    | WrongFormat of format: string
    /// A write would have overwritten live metadata: it was refused and the image marked corrupt.
    | OverlapsMetadata of structure: Structure * offset: uint64 * metadata: string
    /// Metadata met on the way to a write is broken in a way QEMU treats as fatal: the request
    /// failed and the image was marked corrupt. `reason` is QEMU's wording.
    | CorruptionFound of structure: Structure * offset: uint64 * reason: string
    /// The image is marked corrupt, so it takes no writes (`afterOverlap`: marked by this open,
    /// after a write that would have overwritten metadata).
    | MarkedCorrupt of afterOverlap: bool
    /// The image uses something Qcow does not do yet; the text names it.
    | NotSupportedYet of feature: string

/// Functions over format errors.
module internal FormatError =
    let private hex (v: uint64) = sprintf "0x%x" v

    /// The structure an error was found in.
    let structure error =
        match error with
        | BadMagic _
        | UnsupportedVersion _
        | ForeignFormat _
        | UnsupportedFeatures _
        | WrongFormat _
        | MarkedCorrupt _
        | NotSupportedYet _ -> Structure.Header
        | TablePastEnd(s, _)
        | Unreadable(s, _)
        | OverlapsMetadata(s, _, _)
        | CorruptionFound(s, _, _)
        | Truncated(s, _, _)
        | FieldOutOfRange(s, _, _, _, _)
        | OutsideQemuLimit(s, _, _, _, _)
        | Misaligned(s, _, _)
        | ReservedBitsSet(s, _, _)
        | EntryOutOfRange(s, _, _)
        | Inconsistent(s, _, _) -> s
        | ExtensionTooLarge _ -> Structure.HeaderExtension
        | BadCompressedData _ -> Structure.CompressedCluster

    /// The byte offset in the image file where the error was found.
    let offset error =
        match error with
        | BadMagic _
        | ForeignFormat _ -> 0UL
        | UnsupportedVersion _
        | WrongFormat _ -> 4UL
        | MarkedCorrupt _
        | NotSupportedYet _ -> uint64 HeaderFields.IncompatibleFeatures
        | TablePastEnd(_, o)
        | Unreadable(_, o)
        | OverlapsMetadata(_, o, _)
        | CorruptionFound(_, o, _)
        | Truncated(_, o, _)
        | FieldOutOfRange(_, o, _, _, _)
        | OutsideQemuLimit(_, o, _, _, _)
        | Misaligned(_, o, _)
        | ExtensionTooLarge(_, o, _)
        | UnsupportedFeatures(o, _, _)
        | ReservedBitsSet(_, o, _)
        | EntryOutOfRange(_, o, _)
        | BadCompressedData(o, _)
        | Inconsistent(_, o, _) -> o

    let private tableName structure =
        match structure with
        | Structure.L1Table -> "L1 table"
        | Structure.RefcountTable -> "refcount table"
        | Structure.L2Table -> "L2 table"
        | Structure.RefcountBlock -> "refcount block"
        | other -> sprintf "%A" other

    /// One sentence saying what is wrong, for people (in QEMU's words where QEMU has them).
    let describe error =
        match error with
        | BadMagic found -> sprintf "not a qcow image: magic is %s, expected 0x514649fb" (hex (uint64 found))
        | UnsupportedVersion(format, v) -> sprintf "Unsupported %s version %d" format v
        | ForeignFormat name -> sprintf "the file is a %s image, a format Qcow does not read (it reads qcow, qcow2 and raw)" name
        | Truncated(s, o, n) -> sprintf "%A at %s is cut short: the file ends before its %d bytes" s (hex o) n
        | FieldOutOfRange(_, o, field, v, limit) -> sprintf "%s is %d at %s; it must be %s" field v (hex o) limit
        | OutsideQemuLimit(_, _, _, _, words) -> words
        | Misaligned(s, o, v) -> sprintf "%s: the offset %s stored at %s is not cluster-aligned" (tableName s) (hex v) (hex o)
        | ExtensionTooLarge _ -> "Header extension too large"
        | UnsupportedFeatures(_, _, names) ->
            sprintf "Unsupported qcow2 feature(s): %s" (String.concat ", " names)
        | ReservedBitsSet(s, o, e) -> sprintf "%A entry at %s has reserved bits set: %s" s (hex o) (hex e)
        | EntryOutOfRange(s, o, e) -> sprintf "%A entry at %s points outside the image: %s" s (hex o) (hex e)
        | BadCompressedData(o, reason) -> sprintf "compressed cluster at %s: %s" (hex o) reason
        | Inconsistent(s, o, reason) -> sprintf "%A at %s: %s" s (hex o) reason
        | TablePastEnd(s, o) -> sprintf "the %s at %s lies past the end of the file: open the image read-only" (tableName s) (hex o)
        | Unreadable(s, o) -> sprintf "Could not read %s at %s: Input/output error" (tableName s) (hex o)
        | WrongFormat format -> sprintf "Image is not in %s format" format
        | OverlapsMetadata(_, _, metadata) ->
            sprintf "Preventing invalid write on metadata (overlaps with %s)" metadata
        | CorruptionFound(_, _, reason) -> reason
        | MarkedCorrupt true ->
            "the image was marked corrupt after a write that would have overwritten metadata; it takes no more writes"
        | MarkedCorrupt false -> "the image is marked corrupt: open it read-only, or repair it"
        | NotSupportedYet feature -> sprintf "%s is not supported yet" feature

/// `result { }`: sequencing for checks that stop at the first error.
[<AutoOpen>]
module internal ResultBuilder =
    type ResultBuilder() =
        member _.Return(x) = Ok x
        member _.ReturnFrom(r: Result<_, _>) = r
        member _.Bind(r, f) = Result.bind f r
        member _.Zero() = Ok()
        member _.Delay(f: unit -> Result<_, _>) = f
        member _.Run(f: unit -> Result<_, _>) = f ()
        member _.Combine(r: Result<unit, _>, f: unit -> Result<_, _>) = Result.bind f r

    let result = ResultBuilder()

    /// Ok () when the condition holds, else the error.
    let check condition error = if condition then Ok() else Error error
