/// The bit fields of L1 and L2 entries, named as qcow2.rst names them: what `qcow explain`
/// shows of a raw entry, each field taken out of the value once, here.
namespace Qcow.Format

/// How a field's value reads: a flag (0 or 1), a count (shifted down to bit 0), or an offset
/// (kept where it lies in the entry, so that it is a byte offset).
type internal FieldKind =
    | Flag = 0
    | Count = 1
    | Offset = 2

/// One field of an entry: bits FirstBit..LastBit (both -1 for the reserved bits, which are
/// scattered), its name and its value.
[<Struct>]
type internal EntryField =
    { FirstBit: int
      LastBit: int
      Name: string
      Kind: FieldKind
      Value: uint64 }

module internal EntryFields =
    let private inPlace first last =
        let width = last - first + 1
        (if width = 64 then ~~~0UL else (1UL <<< width) - 1UL) <<< first

    let private flag bit name (entry: uint64) =
        { FirstBit = bit; LastBit = bit; Name = name; Kind = FieldKind.Flag; Value = (entry >>> bit) &&& 1UL }

    let private count first last name (entry: uint64) =
        { FirstBit = first; LastBit = last; Name = name; Kind = FieldKind.Count; Value = (entry &&& inPlace first last) >>> first }

    let private offset first last name (entry: uint64) =
        { FirstBit = first; LastBit = last; Name = name; Kind = FieldKind.Offset; Value = entry &&& inPlace first last }

    let private reserved mask (entry: uint64) =
        { FirstBit = -1; LastBit = -1; Name = "reserved"; Kind = FieldKind.Offset; Value = entry &&& mask }

    /// An L1 entry's fields; in qcow v1 the whole value is the L2 table's offset.
    let l1 version (entry: uint64) =
        if version = 1 then
            [ offset 0 63 "L2 table offset" entry ]
        else
            [ flag 63 "COPIED" entry
              offset 9 55 "L2 table offset" entry
              reserved L1Entry.ReservedMask entry ]

    /// An L2 entry's fields (the first word of an extended entry): a standard entry, a qcow2
    /// compressed descriptor (x = 62 − (cluster_bits − 8)), or qcow v1's two kinds.
    let l2 (format: EntryFormat) (entry: uint64) =
        let bits = format.ClusterBits

        if format.Version = 1 then
            if entry &&& L2Entry.V1CompressedFlag <> 0UL then
                [ flag 63 "COMPRESSED" entry
                  count (63 - bits) 62 "compressed bytes" entry
                  offset 0 (62 - bits) "host byte offset" entry ]
            else
                [ offset 0 63 "host cluster" entry ]
        elif entry &&& L2Entry.CompressedFlag <> 0UL then
            let x = L2Entry.compressedOffsetBits bits

            [ flag 62 "COMPRESSED" entry
              count x 61 "extra sectors" entry
              offset 0 (x - 1) "host byte offset" entry ]
        else
            [ flag 63 "COPIED" entry
              flag 62 "COMPRESSED" entry
              offset 9 55 "host cluster" entry
              flag 0 "ZERO" entry
              reserved L2Entry.StandardReservedMask entry ]
