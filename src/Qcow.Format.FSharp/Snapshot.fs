/// Internal snapshot table entries (qcow2.rst "Snapshots"), decoded one at a time: each entry is
/// a 40-byte fixed part, extra data, the ID and the name, padded to 8 bytes.
///
/// | offset | size | field            |  | extra data (offsets from the entry)       |
/// |      0 |    8 | l1_table_offset  |  | 40 | 8 | vm_state_size_large (if ≥ 8)  |
/// |      8 |    4 | l1_size          |  | 48 | 8 | disk_size (if ≥ 16)           |
/// |     12 |    2 | id_str_size      |  | 56 | 8 | icount (if ≥ 24)              |
/// |     14 |    2 | name_size        |
/// |     16 |    4 | date_sec         |
/// |     20 |    4 | date_nsec        |
/// |     24 |    8 | vm_clock_nsec    |
/// |     32 |    4 | vm_state_size    |
/// |     36 |    4 | extra_data_size  |
namespace Qcow.Format

open System
open System.Text

type internal Snapshot =
    { L1TableOffset: uint64
      L1Size: uint32
      Id: string
      Name: string
      DateSeconds: uint32
      DateNanoseconds: uint32
      VmClockNanoseconds: uint64
      VmStateSize: uint64
      ExtraData: byte[] }

module internal Snapshot =
    /// The fixed part of an entry.
    [<Literal>]
    let FixedBytes = 40

    /// QEMU refuses more extra data than this per entry (QCOW_MAX_SNAPSHOT_EXTRA_DATA).
    [<Literal>]
    let MaxExtraData = 1024u

    /// The guest's instruction count at the snapshot (extra data bytes 16–23), or None when the
    /// entry does not record one (QEMU's -1).
    let icount (s: Snapshot) =
        if s.ExtraData.Length >= 24 then
            let value = BigEndian.u64 (System.ReadOnlySpan s.ExtraData) 16
            if value = System.UInt64.MaxValue then None else Some value
        else
            None

    /// The virtual disk size at the snapshot (extra data bytes 8–15), when the entry records it.
    let diskSize (s: Snapshot) =
        if s.ExtraData.Length >= 16 then Some(BigEndian.u64 (System.ReadOnlySpan s.ExtraData) 8) else None

    /// QEMU allows at most this many snapshots (QCOW_MAX_SNAPSHOTS).
    [<Literal>]
    let MaxCount = 65536

    /// The whole snapshot table is at most 64 MiB (QCOW_MAX_SNAPSHOTS_SIZE).
    [<Literal>]
    let MaxTableBytes = 67108864UL

    /// A table of `tableBytes` so far, its next entry at `at`, stays within QEMU's limit.
    let withinTableLimit (tableBytes: uint64) (at: uint64) =
        check
            (tableBytes <= MaxTableBytes)
            (FieldOutOfRange(Structure.SnapshotTable, at, "the snapshot table's size", tableBytes, "at most 64 MiB (QEMU's limit)"))

    /// Bytes an entry found at `at` takes, padding included, from its fixed part. Its extra data
    /// is checked here, before anyone reads it, as QEMU checks it (qcow2_read_snapshots).
    let entryBytes (fixedPart: ReadOnlySpan<byte>) (at: uint64) : Result<uint64, FormatError> =
        let extra = BigEndian.u32 fixedPart 36
        let id = BigEndian.u16 fixedPart 12
        let name = BigEndian.u16 fixedPart 14

        if extra > MaxExtraData then
            Error(FieldOutOfRange(Structure.SnapshotTable, at + 36UL, "extra_data_size", uint64 extra, "at most 1024"))
        else
            Ok((uint64 FixedBytes + uint64 extra + uint64 id + uint64 name + 7UL) &&& ~~~7UL)

    /// Decodes one whole entry found at `at` in the image file, of the size entryBytes gave.
    let decode (clusterBits: int) (entry: byte[]) (at: uint64) : Result<Snapshot, FormatError> =
        let s = ReadOnlySpan entry
        let extra = BigEndian.u32 s 36
        let idLength = int (BigEndian.u16 s 12)
        let nameLength = int (BigEndian.u16 s 14)
        let l1 = BigEndian.u64 s 0
        let l1Size = BigEndian.u32 s 8
        let idAt = FixedBytes + int extra
        let vmState = if extra >= 8u then BigEndian.u64 s 40 else uint64 (BigEndian.u32 s 32)

        let snapshot =
            { L1TableOffset = l1
              L1Size = l1Size
              Id = Encoding.UTF8.GetString(entry, idAt, idLength)
              Name = Encoding.UTF8.GetString(entry, idAt + idLength, nameLength)
              DateSeconds = BigEndian.u32 s 16
              DateNanoseconds = BigEndian.u32 s 20
              VmClockNanoseconds = BigEndian.u64 s 24
              VmStateSize = vmState
              ExtraData = entry[FixedBytes .. idAt - 1] }

        result {
            do! check (l1 &&& ((1UL <<< clusterBits) - 1UL) = 0UL) (Misaligned(Structure.SnapshotTable, at, l1))
            do!
                check
                    (uint64 l1Size * 8UL <= Limits.MaxL1Bytes)
                    (FieldOutOfRange(Structure.SnapshotTable, at + 8UL, "snapshot l1_size", uint64 l1Size, "at most 4194304 entries"))
            do!
                check
                    (l1 <= Limits.MaxFileOffset - uint64 l1Size * 8UL)
                    (FieldOutOfRange(Structure.SnapshotTable, at, "snapshot l1_table_offset", l1, "below 2^63"))
            return snapshot
        }

    /// One entry as QEMU writes it (qcow2_write_snapshots): the fixed part, the extra data (its
    /// first field, when there is room, the 64-bit VM state size), the ID and the name, padded
    /// to 8 bytes. The 32-bit vm_state_size holds the low half, as QEMU's does.
    let encode (s: Snapshot) : byte[] =
        let id = Encoding.UTF8.GetBytes s.Id
        let name = Encoding.UTF8.GetBytes s.Name
        let extra = Array.copy s.ExtraData

        if extra.Length >= 8 then
            BigEndian.putU64 (Span extra) 0 s.VmStateSize

        let entry = Array.zeroCreate ((FixedBytes + extra.Length + id.Length + name.Length + 7) &&& ~~~7)
        let span = Span entry
        BigEndian.putU64 span 0 s.L1TableOffset
        BigEndian.putU32 span 8 s.L1Size
        BigEndian.putU16 span 12 (uint16 id.Length)
        BigEndian.putU16 span 14 (uint16 name.Length)
        BigEndian.putU32 span 16 s.DateSeconds
        BigEndian.putU32 span 20 s.DateNanoseconds
        BigEndian.putU64 span 24 s.VmClockNanoseconds
        BigEndian.putU32 span 32 (uint32 s.VmStateSize)
        BigEndian.putU32 span 36 (uint32 extra.Length)
        extra.CopyTo(span.Slice FixedBytes)
        id.CopyTo(span.Slice(FixedBytes + extra.Length))
        name.CopyTo(span.Slice(FixedBytes + extra.Length + id.Length))
        entry

    /// The ID a new snapshot gets, as QEMU's find_new_snapshot_id picks it: one more than the
    /// largest ID that reads as a number (others count as 0).
    let nextId (snapshots: Snapshot list) =
        let numeric (id: string) =
            let digits = id |> Seq.takeWhile Char.IsAsciiDigit |> Seq.truncate 19 |> Array.ofSeq
            if digits.Length = 0 then 0UL else UInt64.Parse(String digits)

        let largest = snapshots |> List.fold (fun m s -> max m (numeric s.Id)) 0UL
        string (largest + 1UL)

    /// The index of the first snapshot with this ID and this name (None matches any), as QEMU's
    /// find_snapshot_by_id_and_name finds it.
    let tryFindBy (id: string option) (name: string option) (snapshots: Snapshot list) =
        let matches (s: Snapshot) =
            (id.IsSome || name.IsSome)
            && Option.forall ((=) s.Id) id
            && Option.forall ((=) s.Name) name

        List.tryFindIndex matches snapshots

    /// The index of the snapshot a user names, as QEMU finds it: by ID first, then by name.
    let tryFind (idOrName: string) (snapshots: Snapshot list) =
        tryFindBy (Some idOrName) None snapshots
        |> Option.orElse (tryFindBy None (Some idOrName) snapshots)

    /// A snapshot of the active state as qemu-img snapshot -c records it: no VM state, VM clock 0,
    /// and the extra data QEMU 7.2 writes (64-bit VM state size, virtual disk size, icount 0).
    let create (id: string) (name: string) (dateSeconds: uint32) (dateNanoseconds: uint32) (l1Offset: uint64) (l1Size: uint32) (diskSize: uint64) =
        let extra = Array.zeroCreate<byte> 24
        BigEndian.putU64 (Span extra) 8 diskSize

        { L1TableOffset = l1Offset
          L1Size = l1Size
          Id = id
          Name = name
          DateSeconds = dateSeconds
          DateNanoseconds = dateNanoseconds
          VmClockNanoseconds = 0UL
          VmStateSize = 0UL
          ExtraData = extra }

    /// An entry as QEMU writes it back whenever it rewrites the table: at least the 24 bytes of
    /// extra data version 3 requires, the fields an older entry lacks filled in (the disk size
    /// with the image's `size` at the time, the icount as unknown); longer extra data stays.
    let normalized (size: uint64) (s: Snapshot) =
        if s.ExtraData.Length >= 24 then
            s
        else
            let extra = Array.zeroCreate<byte> 24
            Array.blit s.ExtraData 0 extra 0 s.ExtraData.Length
            BigEndian.putU64 (Span extra) 0 s.VmStateSize
            BigEndian.putU64 (Span extra) 8 (diskSize s |> Option.defaultValue size)
            BigEndian.putU64 (Span extra) 16 UInt64.MaxValue
            { s with ExtraData = extra }

    /// The whole table as QEMU writes it: the entries one after another, unpadded at the end.
    let encodeTable (snapshots: Snapshot list) = snapshots |> List.map encode |> Array.concat
