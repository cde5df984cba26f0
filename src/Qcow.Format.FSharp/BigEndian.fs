/// Big-endian reads and writes on spans, after a bounds check by the caller: every multi-byte
/// integer in qcow metadata is big-endian.
module internal Qcow.Format.BigEndian

open System
open System.Buffers.Binary

let inline u16 (bytes: ReadOnlySpan<byte>) (at: int) = BinaryPrimitives.ReadUInt16BigEndian(bytes.Slice at)
let inline u32 (bytes: ReadOnlySpan<byte>) (at: int) = BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice at)
let inline u64 (bytes: ReadOnlySpan<byte>) (at: int) = BinaryPrimitives.ReadUInt64BigEndian(bytes.Slice at)

let inline putU16 (bytes: Span<byte>) (at: int) (v: uint16) = BinaryPrimitives.WriteUInt16BigEndian(bytes.Slice at, v)
let inline putU32 (bytes: Span<byte>) (at: int) (v: uint32) = BinaryPrimitives.WriteUInt32BigEndian(bytes.Slice at, v)
let inline putU64 (bytes: Span<byte>) (at: int) (v: uint64) = BinaryPrimitives.WriteUInt64BigEndian(bytes.Slice at, v)
