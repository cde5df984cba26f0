/// Persistent dirty bitmaps' directory entries (qcow2.rst "Bitmaps extension"), as far as Qcow
/// reads them: where each bitmap's table lies and how long it is, its flags, granularity and name.
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
      GranularityBits: int }

module internal Bitmaps =
    [<Literal>]
    let FixedEntryBytes = 24

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
                          GranularityBits = int directory[position + 17] }

                    entries (i + 1u) (position + int entryBytes) (bitmap :: acc)

        entries 0u 0 []
