/// Refcount table and block arithmetic and packing (qcow2.rst "Host cluster management").
///
/// refcount_bits = 1 << refcount_order; a block is one cluster of
/// cluster_size × 8 / refcount_bits entries. Entries narrower than a byte are packed LSB-first
/// within each byte; 16-, 32- and 64-bit entries are big-endian.
namespace Qcow.Format

open System

/// Shape of an image's refcount structures.
[<Struct>]
type internal RefcountGeometry =
    { ClusterBits: int
      RefcountOrder: int }

module internal Refcount =
    /// Reserved low bits of a refcount table entry (REFT_RESERVED_MASK).
    [<Literal>]
    let TableReservedMask = 0x1ffUL

    let bits (g: RefcountGeometry) = 1 <<< g.RefcountOrder

    /// The largest refcount an entry holds: 2^refcount_bits − 1.
    let maxValue (g: RefcountGeometry) =
        if g.RefcountOrder = 6 then UInt64.MaxValue else (1UL <<< bits g) - 1UL

    /// log2 of entries per block: cluster_bits + 3 − refcount_order.
    let blockBits (g: RefcountGeometry) = g.ClusterBits + 3 - g.RefcountOrder

    let entriesPerBlock (g: RefcountGeometry) = 1UL <<< blockBits g

    /// Which refcount table entry covers a host cluster.
    let tableIndex (g: RefcountGeometry) (cluster: HostCluster) = cluster.Cluster >>> blockBits g

    /// Which entry of its block describes a host cluster.
    let blockIndex (g: RefcountGeometry) (cluster: HostCluster) =
        int (cluster.Cluster &&& (entriesPerBlock g - 1UL))

    /// The first host cluster that refcount table entry `index` covers.
    let firstClusterOfBlock (g: RefcountGeometry) (index: uint64) = HostCluster.Of(index <<< blockBits g)

    /// Table entries that fit in n clusters.
    let tableEntriesIn (g: RefcountGeometry) (clusters: uint64) = (clusters <<< g.ClusterBits) / 8UL

    /// Reads entry `index` of a refcount block.
    let get (order: int) (block: ReadOnlySpan<byte>) (index: int) : uint64 =
        match order with
        | 6 -> BigEndian.u64 block (index * 8)
        | 5 -> uint64 (BigEndian.u32 block (index * 4))
        | 4 -> uint64 (BigEndian.u16 block (index * 2))
        | 3 -> uint64 block[index]
        | _ ->
            let width = 1 <<< order
            let perByte = 8 >>> order
            let shift = (index % perByte) * width
            uint64 ((int block[index / perByte] >>> shift) &&& ((1 <<< width) - 1))

    /// Writes entry `index` of a refcount block; the value must fit in refcount_bits.
    let set (order: int) (block: Span<byte>) (index: int) (value: uint64) : unit =
        match order with
        | 6 -> BigEndian.putU64 block (index * 8) value
        | 5 -> BigEndian.putU32 block (index * 4) (uint32 value)
        | 4 -> BigEndian.putU16 block (index * 2) (uint16 value)
        | 3 -> block[index] <- byte value
        | _ ->
            let width = 1 <<< order
            let perByte = 8 >>> order
            let shift = (index % perByte) * width
            let mask = ((1 <<< width) - 1) <<< shift
            block[index / perByte] <- byte ((int block[index / perByte] &&& ~~~mask) ||| ((int value <<< shift) &&& mask))
