/// L1 table entries (qcow2.rst "Cluster mapping"): the raw 64-bit value and what it means.
///
/// qcow2:  bits 0–8 reserved | 9–55 L2 table offset | 56–62 reserved | 63 COPIED
/// qcow v1: the whole value is the L2 table's byte offset; 0 = none.
namespace Qcow.Format

/// What an L1 entry says about one L2 table.
[<Struct>]
type internal L1Mapping =
    { L2TableOffset: uint64
      IsCopied: bool }

module internal L1Entry =
    [<Literal>]
    let CopiedFlag = 0x8000000000000000UL

    [<Literal>]
    let OffsetMask = 0x00fffffffffffe00UL

    [<Literal>]
    let ReservedMask = 0x7f000000000001ffUL

    /// The L1 entry of an unallocated L2 table.
    let unallocated = { L2TableOffset = 0UL; IsCopied = false }

    /// Decodes a qcow2 L1 entry. Reserved bits are reported by check, not refused, as QEMU does.
    let classify (entry: uint64) =
        { L2TableOffset = entry &&& OffsetMask
          IsCopied = entry &&& CopiedFlag <> 0UL }

    let ofMapping (m: L1Mapping) =
        m.L2TableOffset ||| (if m.IsCopied then CopiedFlag else 0UL)
