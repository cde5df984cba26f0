/// The quantities of the format, one type each, so that a guest offset can never be passed
/// where a host offset belongs.
namespace Qcow.Format

/// A byte offset in the virtual disk the guest sees.
[<Struct>]
type internal GuestOffset =
    { Guest: uint64 }

    static member Of(value: uint64) = { Guest = value }

/// A byte offset in the image file (or the external data file).
[<Struct>]
type internal HostOffset =
    { Host: uint64 }

    static member Of(value: uint64) = { Host = value }

/// Index of a host cluster: host offset >> cluster_bits.
[<Struct>]
type internal HostCluster =
    { Cluster: uint64 }

    static member Of(value: uint64) = { Cluster = value }

/// Index into the active L1 table.
[<Struct>]
type internal L1Index =
    { L1: int }

    static member Of(value: int) = { L1 = value }

/// Index into one L2 table.
[<Struct>]
type internal L2Index =
    { L2: int }

    static member Of(value: int) = { L2 = value }

/// Byte offset inside one cluster.
[<Struct>]
type internal OffsetInCluster =
    { InCluster: int }

    static member Of(value: int) = { InCluster = value }

/// Where a guest offset lives in the two-level table: L1 index, L2 index, offset in cluster.
[<Struct>]
type internal GuestAddress =
    { L1Index: L1Index
      L2Index: L2Index
      OffsetInCluster: OffsetInCluster }
