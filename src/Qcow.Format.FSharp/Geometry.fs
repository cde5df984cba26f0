/// Cluster geometry and the address arithmetic: guest offset ↔ (L1 index, L2 index, offset in
/// cluster), after qcow2.rst "Cluster mapping" and block/qcow.c for v1.
namespace Qcow.Format

/// The shape of an image's two-level table.
///
/// qcow2: an L2 table is one cluster of 8-byte entries (16 with extended L2), so
/// l2_bits = cluster_bits − 3 (or − 4). qcow v1 stores l2_bits in its header and an L2 table
/// (8 << l2_bits bytes) need not be one cluster.
[<Struct>]
type internal Geometry =
    { ClusterBits: int
      L2Bits: int
      L2EntryBytes: int }

module internal Geometry =
    /// Geometry of a qcow2 image with standard 8-byte L2 entries.
    let qcow2 clusterBits =
        { ClusterBits = clusterBits
          L2Bits = clusterBits - 3
          L2EntryBytes = 8 }

    /// Geometry of a qcow2 image with extended (16-byte) L2 entries: half as many per table.
    let qcow2Extended clusterBits =
        { ClusterBits = clusterBits
          L2Bits = clusterBits - 4
          L2EntryBytes = 16 }

    /// Geometry of a qcow v1 image: l2_bits is a header field.
    let qcowV1 clusterBits l2Bits =
        { ClusterBits = clusterBits
          L2Bits = l2Bits
          L2EntryBytes = 8 }

    let clusterSize g = 1UL <<< g.ClusterBits

    let l2Entries g = 1 <<< g.L2Bits

    /// Bytes of one L2 table on disk.
    let l2TableBytes g = l2Entries g * g.L2EntryBytes

    /// Guest bytes one L1 entry maps: cluster_size × entries per L2 table.
    let bytesPerL1Entry g = 1UL <<< (g.ClusterBits + g.L2Bits)

    /// ceil(n / 2^bits) without overflowing near 2^64.
    let ceilShift (n: uint64) bits =
        (n >>> bits) + (if n &&& ((1UL <<< bits) - 1UL) <> 0UL then 1UL else 0UL)

    /// L1 entries a virtual size needs (QEMU's size_to_l1).
    let l1EntriesFor g (virtualSize: uint64) = ceilShift virtualSize (g.ClusterBits + g.L2Bits)

    /// Clusters needed to hold n bytes.
    let clustersFor g (bytes: uint64) = ceilShift bytes g.ClusterBits

    let offsetInCluster g (offset: uint64) = int (offset &&& (clusterSize g - 1UL))

    let startOfCluster g (offset: uint64) = offset &&& ~~~(clusterSize g - 1UL)

    let isClusterAligned g (offset: uint64) = offset &&& (clusterSize g - 1UL) = 0UL

    /// Rounds up to a whole cluster; the caller keeps n below 2^64 − cluster size.
    let alignUp g (n: uint64) = startOfCluster g (n + clusterSize g - 1UL)

    /// A guest offset's L1 index: off >> (cluster_bits + l2_bits).
    let l1Index g (off: uint64) = int (off >>> (g.ClusterBits + g.L2Bits))

    /// A guest offset's L2 index: (off >> cluster_bits) & (l2_entries − 1).
    let l2Index g (off: uint64) = int ((off >>> g.ClusterBits) &&& uint64 (l2Entries g - 1))

    /// Splits a guest offset: its L1 index, L2 index, and in cluster = off & (cluster_size − 1).
    let decompose g (offset: GuestOffset) =
        let off = offset.Guest
        { L1Index = L1Index.Of(l1Index g off)
          L2Index = L2Index.Of(l2Index g off)
          OffsetInCluster = OffsetInCluster.Of(offsetInCluster g off) }

    /// The inverse of decompose.
    let compose g (address: GuestAddress) =
        GuestOffset.Of(
            (uint64 address.L1Index.L1 <<< (g.ClusterBits + g.L2Bits))
            ||| (uint64 address.L2Index.L2 <<< g.ClusterBits)
            ||| uint64 address.OffsetInCluster.InCluster
        )
