/// Persistent dirty bitmaps (qcow2.rst "Bitmaps extension"): the directory's entries (where each
/// bitmap's table lies and how long it is, its flags, granularity and name), the bitmap tables'
/// entries, and the arithmetic from guest bytes to bits and from bits to the clusters storing them.
///
/// | offset | size | field              |
/// |      0 |    8 | bitmap_table_offset |
/// |      8 |    4 | bitmap_table_size   |
/// |     12 |    4 | flags (bit 0 in-use, bit 1 auto) |
/// |     16 |    1 | type                |
/// |     17 |    1 | granularity_bits    |
/// |     18 |    2 | name_size           |
/// |     20 |    4 | extra_data_size     |
/// |     24 |    … | extra data, then the name, padded to 8 bytes |
namespace Qcow.Format

open System
open System.Text

/// One bitmap of the directory.
type internal Bitmap =
    { Name: string
      TableOffset: uint64
      /// 8-byte entries: one data cluster each (0: all zeros; bit 0 alone: all ones).
      TableEntries: uint32
      /// Bit 0 in-use, bit 1 auto.
      Flags: uint32
      /// Guest bytes per bit, as a power of two.
      GranularityBits: int
      /// 1: a dirty tracking bitmap, the only type there is.
      Type: byte
      /// Bytes of extra data before the name; QEMU writes none and keeps no bitmap that has some.
      ExtraDataBytes: uint32 }

/// What one entry of a bitmap table says of the bitmap data cluster it stands for.
type internal BitmapTableEntry =
    | AllZeros
    | AllOnes
    | StoredAt of offset: uint64
    /// Reserved bits set, the all-ones flag beside an offset, or an offset off the cluster grid.
    | InvalidEntry

module internal Bitmaps =
    [<Literal>]
    let FixedEntryBytes = 24

    [<Literal>]
    let InUseFlag = 1u

    /// The bitmap records every write (QEMU: enabled).
    [<Literal>]
    let AutoFlag = 2u

    [<Literal>]
    let ReservedFlags = 0xfffffffcu

    [<Literal>]
    let DirtyTrackingType = 1uy

    /// QEMU's limits (QCOW2_MAX_BITMAPS, BME_MAX_NAME_SIZE, BME_*_GRANULARITY_BITS,
    /// BME_MAX_TABLE_SIZE, BME_MAX_PHYS_SIZE).
    [<Literal>]
    let MaxCount = 65535

    [<Literal>]
    let MaxNameBytes = 1023

    [<Literal>]
    let MinGranularityBits = 9

    [<Literal>]
    let MaxGranularityBits = 31

    [<Literal>]
    let MaxTableEntries = 0x8000000UL

    [<Literal>]
    let MaxStoredBytes = 0x20000000UL

    let private TableOffsetMask = 0x00fffffffffffe00UL
    let private TableReservedMask = 0xff000000000001feUL
    let private AllOnesFlag = 1UL

    /// A bitmap table entry as the bitmap's data cluster it describes (QEMU's check_table_entry).
    let tableEntry (clusterBits: int) (entry: uint64) =
        let offset = entry &&& TableOffsetMask

        if entry &&& TableReservedMask <> 0UL then InvalidEntry
        elif offset = 0UL then (if entry &&& AllOnesFlag <> 0UL then AllOnes else AllZeros)
        elif entry &&& AllOnesFlag <> 0UL || offset &&& ((1UL <<< clusterBits) - 1UL) <> 0UL then InvalidEntry
        else StoredAt offset

    /// Bits the bitmap holds: one per granule of the virtual disk, the last one partial.
    let bitCount (virtualSize: uint64) (granularityBits: int) =
        (virtualSize + (1UL <<< granularityBits) - 1UL) >>> granularityBits

    /// Bits one data cluster stores.
    let bitsPerCluster (clusterBits: int) = 8UL <<< clusterBits

    /// Entries of the bitmap's table: one per data cluster its bits need.
    let tableEntriesFor (clusterBits: int) (virtualSize: uint64) (granularityBits: int) =
        let per = bitsPerCluster clusterBits
        (bitCount virtualSize granularityBits + per - 1UL) / per

    /// The bits a guest byte range sets, first and one past the last (the range cut at the disk's end).
    let bitsOf (granularityBits: int) (virtualSize: uint64) (offset: uint64) (length: uint64) =
        let last = min virtualSize (offset + length)

        if length = 0UL || offset >= last then
            struct (0UL, 0UL)
        else
            struct (offset >>> granularityBits, ((last - 1UL) >>> granularityBits) + 1UL)

    /// QEMU's default granularity (bdrv_get_default_bitmap_granularity): the cluster size, kept within 4 KiB to 64 KiB.
    let defaultGranularityBits (clusterBits: int) = max 12 (min 16 clusterBits)

    /// A bitmap the image can take, as QEMU's qmp_block_dirty_bitmap_add and
    /// check_constraints_on_bitmap decide it; the message is QEMU's.
    let checkNew (clusterBits: int) (virtualSize: uint64) (name: string) (granularity: uint64) =
        let bits = System.Numerics.BitOperations.TrailingZeroCount granularity
        let bytes = (bitCount virtualSize bits + 7UL) / 8UL

        if granularity < 512UL || granularity &&& (granularity - 1UL) <> 0UL then
            Error "Granularity must be power of 2 and at least 512"
        elif bits > MaxGranularityBits then
            Error(sprintf "Granularity exceeds maximum (%d bytes)" (1UL <<< MaxGranularityBits))
        elif bytes > MaxStoredBytes || bytes > (MaxTableEntries <<< clusterBits) then
            Error "Too much space will be occupied by the bitmap. Use larger granularity"
        elif Encoding.UTF8.GetByteCount name > MaxNameBytes then
            Error(sprintf "Name length exceeds maximum (%d characters)" MaxNameBytes)
        else
            Ok bits

    /// Bytes a directory entry for a bitmap of this name takes, padded to 8.
    let entryBytes (name: string) =
        (FixedEntryBytes + Encoding.UTF8.GetByteCount name + 7) &&& ~~~7

    /// The directory QEMU writes for these bitmaps, in order (no extra data).
    let encode (bitmaps: Bitmap list) : byte[] =
        let directory = Array.zeroCreate (bitmaps |> List.sumBy (fun b -> entryBytes b.Name))

        let rec write position (rest: Bitmap list) =
            match rest with
            | [] -> ()
            | b :: tail ->
                let e = Span(directory, position, directory.Length - position)
                let name = Encoding.UTF8.GetBytes b.Name
                BigEndian.putU64 e 0 b.TableOffset
                BigEndian.putU32 e 8 b.TableEntries
                BigEndian.putU32 e 12 b.Flags
                e[16] <- DirtyTrackingType
                e[17] <- byte b.GranularityBits
                BigEndian.putU16 e 18 (uint16 name.Length)
                name.CopyTo(e.Slice FixedEntryBytes)
                write (position + entryBytes b.Name) tail

        write 0 bitmaps
        directory

    /// What QEMU's check_dir_entry refuses in a bitmap it is to keep current; None when it takes it.
    let invalid (clusterBits: int) (virtualSize: uint64) (b: Bitmap) =
        let stored = uint64 b.TableEntries <<< clusterBits

        if b.ExtraDataBytes <> 0u then Some "Bitmap extra data is not supported"
        elif
            b.TableEntries = 0u
            || b.TableOffset = 0UL
            || b.TableOffset &&& ((1UL <<< clusterBits) - 1UL) <> 0UL
            || uint64 b.TableEntries > MaxTableEntries
            || b.GranularityBits > MaxGranularityBits
            || b.GranularityBits < MinGranularityBits
            || b.Flags &&& ReservedFlags <> 0u
            || b.Type <> DirtyTrackingType
            || stored > MaxStoredBytes
            || (b.Flags &&& InUseFlag = 0u && uint64 b.TableEntries <> tableEntriesFor clusterBits virtualSize b.GranularityBits)
        then
            Some(sprintf "Bitmap '%s' doesn't satisfy the constraints" b.Name)
        else
            None

    /// QEMU refuses a larger directory (QCOW2_MAX_BITMAP_DIRECTORY_SIZE).
    [<Literal>]
    let MaxDirectoryBytes = 67108864UL

    /// The directory the extension (at `extensionAt`) names lies within QEMU's limit and the file.
    let locate (extensionAt: uint64) (directoryOffset: uint64) (directoryBytes: uint64) (fileLength: uint64) =
        check
            (directoryBytes <= MaxDirectoryBytes && directoryOffset < fileLength && directoryBytes <= fileLength - directoryOffset)
            (EntryOutOfRange(Structure.HeaderExtension, extensionAt, directoryOffset))

    /// The directory's `count` entries, the directory read from `directoryOffset`; an entry that
    /// does not fit is an error naming where it starts.
    let decode (directoryOffset: uint64) (directory: byte[]) (count: uint32) : Result<Bitmap list, FormatError> =
        let failAt (position: int) reason =
            Error(Inconsistent(Structure.HeaderExtension, directoryOffset + uint64 position, reason))

        let rec entries i position acc =
            if i = count then
                Ok(List.rev acc)
            elif position + FixedEntryBytes > directory.Length then
                failAt position "the bitmap directory is shorter than its entries"
            else
                let e = ReadOnlySpan(directory, position, directory.Length - position)
                let nameSize = int (BigEndian.u16 e 18)
                let extra = BigEndian.u32 e 20
                let entryBytes = (int64 FixedEntryBytes + int64 extra + int64 nameSize + 7L) &&& ~~~7L

                if int64 position + entryBytes > int64 directory.Length then
                    failAt position "a bitmap directory entry runs past the directory"
                else
                    let bitmap =
                        { Name = Encoding.UTF8.GetString(directory, position + FixedEntryBytes + int extra, nameSize)
                          TableOffset = BigEndian.u64 e 0
                          TableEntries = BigEndian.u32 e 8
                          Flags = BigEndian.u32 e 12
                          GranularityBits = int directory[position + 17]
                          Type = directory[position + 16]
                          ExtraDataBytes = extra }

                    entries (i + 1u) (position + int entryBytes) (bitmap :: acc)

        entries 0u 0 []
