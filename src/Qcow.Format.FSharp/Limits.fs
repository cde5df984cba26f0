/// QEMU's limits on qcow and qcow2 images, each with where it comes from.
module internal Qcow.Format.Limits

/// Magic shared by qcow and qcow2: 'Q' 'F' 'I' 0xFB.
[<Literal>]
let Magic = 0x514649FBu

/// qcow2 clusters range from 512 B to 2 MiB (block/qcow2.h MIN_CLUSTER_BITS, MAX_CLUSTER_BITS).
[<Literal>]
let MinClusterBits = 9

[<Literal>]
let MaxClusterBits = 21

/// qcow v1 clusters range from 512 B to 64 KiB (block/qcow.c qcow_open).
[<Literal>]
let MinClusterBitsV1 = 9

[<Literal>]
let MaxClusterBitsV1 = 16

/// qcow v1 L2 tables hold 2^6 to 2^13 entries (block/qcow.c qcow_open).
[<Literal>]
let MinL2BitsV1 = 6

[<Literal>]
let MaxL2BitsV1 = 13

/// The active L1 table is at most 32 MiB (QCOW_MAX_L1_SIZE).
[<Literal>]
let MaxL1Bytes = 33554432UL

/// The refcount table is at most 8 MiB (QCOW_MAX_REFTABLE_SIZE).
[<Literal>]
let MaxRefcountTableBytes = 8388608UL

/// refcount_bits = 1 << refcount_order, at most 64 bits.
[<Literal>]
let MaxRefcountOrder = 6

/// A backing file name is at most 1023 bytes (qcow2_do_open, qcow_open).
[<Literal>]
let MaxBackingNameLength = 1023u

/// The backing format extension holds fewer than 16 bytes (qcow2_read_extensions).
[<Literal>]
let MaxBackingFormatLength = 15

/// At most 65536 internal snapshots (QCOW_MAX_SNAPSHOTS).
[<Literal>]
let MaxSnapshots = 65536u

/// Host offsets of standard clusters and tables are below 2^56 (QCOW_MAX_CLUSTER_OFFSET).
[<Literal>]
let MaxHostOffset = 72057594037927935UL

/// How far past the end of the file Qcow writes where a table or a refcount sends it (Qcow's own
/// limit; QEMU has none). After a host crash an L2 entry may name a cluster a little past the end
/// whose data never reached the disk, and refcounts may claim clusters there; a hostile image
/// names clusters, or claims them in use, terabytes away, and writing there grows the file that far.
[<Literal>]
let MaxPastEndBytes = 33554432UL

/// Every offset the format stores must also fit a signed 64-bit file offset.
[<Literal>]
let MaxFileOffset = 9223372036854775807UL

/// QEMU's block layer reads and writes no byte at or past 2^63 - 2^30 (BDRV_MAX_LENGTH: INT64_MAX
/// aligned down to 1 GiB); a request that reaches past it fails with EIO, so a table stored there
/// cannot be read.
[<Literal>]
let MaxRequestEnd = 9223372035781033984UL

/// Size of a v2 header; v3 headers are at least 104 bytes and QEMU writes 112.
[<Literal>]
let HeaderV2Length = HeaderFields.Version2End

[<Literal>]
let HeaderV3MinLength = HeaderFields.Version3MandatoryEnd

[<Literal>]
let HeaderV3Length = 112

/// A qcow v1 header is 48 bytes.
[<Literal>]
let HeaderV1Length = 48

/// Incompatible feature bits QEMU knows (dirty, corrupt, data file, compression type, extended L2).
[<Literal>]
let KnownIncompatibleMask = 0x1FUL
