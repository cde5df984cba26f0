/// The one traversal of everything a qcow2 header reaches, in the order QEMU's check counts it
/// (calculate_refcounts): the header cluster; the active L1 table, each L2 table it names and
/// their entries; each snapshot's tree the same way; the snapshot table; the bitmap directory,
/// each bitmap's table and its entries; the refcount table and its entries. The bytes come from
/// `read`, which the shell supplies (it fills a buffer from the file, zeros past its end); the
/// walk is the tables' arithmetic. Reference counting, COPIED checks, cluster roles and the
/// refcount rebuild are folds over what it gives its visitor.
namespace Qcow.Format

open System

/// What a walked item is.
type internal WalkItem =
    /// The header cluster (offset 0, one cluster).
    | HeaderCluster = 0
    /// An L1 table: Offset, Length = l1_size × 8.
    | L1Table = 1
    /// A non-zero L1 entry: Entry, and Index at EntryAt in the table at Offset.
    | L1Entry = 2
    /// An L2 entry, allocated or not: Entry (the first word, as stored), Bitmap (an extended
    /// entry's second word), Type, Index at EntryAt in the table at Offset.
    | L2Entry = 3
    /// The snapshot table: Offset, Length.
    | SnapshotTable = 4
    /// The bitmap directory: Offset, Length.
    | BitmapDirectory = 5
    /// A bitmap's table: Offset, Length; Index is the bitmap's place in the directory.
    | BitmapTable = 6
    /// A bitmap table entry: Entry, Index at EntryAt in the table at Offset.
    | BitmapEntry = 7
    /// The refcount table: Offset, Length.
    | RefcountTable = 8
    /// A refcount table entry: Entry (as stored, reserved bits and all), Index at EntryAt.
    | RefcountTableEntry = 9

/// One item of the walk (a struct: a walk over millions of entries allocates nothing per entry).
[<Struct>]
type internal Walked =
    { Item: WalkItem
      /// 0 for the active tree, 1, 2, … for the snapshots' trees in table order; -1 elsewhere.
      Tree: int
      /// A structure's offset, or the offset of the table an entry lies in.
      Offset: uint64
      /// A structure's length in bytes; 0 for entries.
      Length: uint64
      Index: int
      EntryAt: uint64
      Entry: uint64
      Bitmap: uint64
      /// An L2 entry's kind by QEMU's check rules (with extended entries, the first word's bit 0
      /// means nothing, except as part of a compressed descriptor).
      Type: ClusterType }

/// A bitmap as the walk needs it: where its table lies and how many entries it has.
[<Struct>]
type internal WalkedBitmapTable = { TableOffset: uint64; TableEntries: uint32 }

/// What receives the walk's items, one at a time, in order: a fold's step (check's reference
/// counting, the COPIED check, the cluster roles), called without allocating per item.
type internal IWalkVisitor =
    abstract Visit: item: inref<Walked> -> unit

/// What the walk covers: the active tree alone (COPIED checks), or everything.
type internal WalkScope =
    | ActiveTree
    | Everything

module internal TableWalk =
    let private structure item tree (offset: uint64) (length: uint64) index =
        { Item = item; Tree = tree; Offset = offset; Length = length; Index = index; EntryAt = 0UL; Entry = 0UL; Bitmap = 0UL; Type = ClusterType.Unallocated }

    let private entry item tree (table: uint64) index (at: uint64) (value: uint64) =
        { Item = item; Tree = tree; Offset = table; Length = 0UL; Index = index; EntryAt = at; Entry = value; Bitmap = 0UL; Type = ClusterType.Unallocated }

    let private give (visitor: IWalkVisitor) (item: Walked) = visitor.Visit &item

    /// An L2 entry's kind as check classifies it: in an image with extended L2 entries the first
    /// word's bit 0 is not the ZERO flag (the bitmap says what is zero), but in a compressed
    /// descriptor it is part of the host offset.
    let checkType (format: EntryFormat) (extended: bool) (raw: uint64) =
        let word =
            if extended && raw &&& L2Entry.CompressedFlag = 0UL then raw &&& ~~~L2Entry.ZeroFlag else raw

        L2Entry.clusterType format word

    /// One tree: its L1 table, then for each non-zero L1 entry the entry and every entry of the
    /// L2 table it names (read whole, whatever its alignment, as QEMU reads it; one buffer for
    /// all of them, however many a hostile L1 table names). Of the L1 table only what the file
    /// holds is read: the rest reads as zero entries.
    let private tree (read: uint64 -> byte[] -> unit) (header: Header) (fileLength: uint64) (visitor: IWalkVisitor) treeIndex (l1Offset: uint64) (l1Size: uint32) =
        let g = Header.geometry header
        let format = Header.entryFormat header
        let extended = g.L2EntryBytes = 16
        give visitor (structure WalkItem.L1Table treeIndex l1Offset (uint64 l1Size * 8UL) 0)
        let inFile = if l1Offset >= fileLength then 0UL else min (uint64 l1Size * 8UL) (fileLength - l1Offset)
        let l1 = Array.zeroCreate<byte> (int (inFile &&& ~~~7UL))
        read l1Offset l1
        let l2 = Array.zeroCreate<byte> (1 <<< header.ClusterBits)

        for i in 0 .. l1.Length / 8 - 1 do
            let l1Entry = BigEndian.u64 (ReadOnlySpan l1) (i * 8)

            if l1Entry <> 0UL then
                give visitor (entry WalkItem.L1Entry treeIndex l1Offset i (l1Offset + uint64 i * 8UL) l1Entry)
                let table = l1Entry &&& L1Entry.OffsetMask
                read table l2

                // A table wholly past the end of the file reads as zeros: its entries name
                // nothing, and a hostile L1 table can name hundreds of thousands of them.
                let entries = if table >= fileLength then 0 else l2.Length / g.L2EntryBytes

                for j in 0 .. entries - 1 do
                    let at = j * g.L2EntryBytes
                    let raw = BigEndian.u64 (ReadOnlySpan l2) at

                    give
                        visitor
                        { entry WalkItem.L2Entry treeIndex table j (table + uint64 at) raw with
                            Bitmap = (if extended then BigEndian.u64 (ReadOnlySpan l2) (at + 8) else 0UL)
                            Type = checkType format extended raw }

    /// The refcount table's entries as stored (reserved bits and all), zeros past the end of the file.
    let refcountTable (read: uint64 -> byte[] -> unit) (header: Header) =
        let table = Array.zeroCreate<byte> (int (uint64 header.RefcountTableClusters <<< header.ClusterBits))
        read header.RefcountTableOffset table
        Array.init (table.Length / 8) (fun i -> BigEndian.u64 (ReadOnlySpan table) (i * 8))

    /// Gives `visitor` every item of the walk over `header`'s image of `fileLength` bytes, in
    /// QEMU's check order. A bitmap table that does not lie inside the file is given but not read.
    let walk
        (read: uint64 -> byte[] -> unit)
        (header: Header)
        (fileLength: uint64)
        (scope: WalkScope)
        (snapshots: Snapshot list)
        (snapshotTableBytes: uint64)
        (bitmapDirectory: struct (uint64 * uint64))
        (bitmaps: WalkedBitmapTable list)
        (visitor: IWalkVisitor)
        =
        let clusterSize = 1UL <<< header.ClusterBits
        give visitor (structure WalkItem.HeaderCluster -1 0UL clusterSize 0)
        tree read header fileLength visitor 0 header.L1TableOffset header.L1Size

        if scope = Everything then
            for (k, s) in List.indexed snapshots do
                tree read header fileLength visitor (k + 1) s.L1TableOffset s.L1Size

            give visitor (structure WalkItem.SnapshotTable -1 header.SnapshotsOffset snapshotTableBytes 0)
            let struct (directoryOffset, directoryBytes) = bitmapDirectory
            give visitor (structure WalkItem.BitmapDirectory -1 directoryOffset directoryBytes 0)

            for (k, b) in List.indexed bitmaps do
                let bytes = uint64 b.TableEntries * 8UL
                give visitor (structure WalkItem.BitmapTable -1 b.TableOffset bytes k)

                if b.TableOffset < fileLength && bytes <= fileLength - b.TableOffset then
                    let table = Array.zeroCreate<byte> (int bytes)
                    read b.TableOffset table

                    for i in 0 .. int b.TableEntries - 1 do
                        give visitor (entry WalkItem.BitmapEntry -1 b.TableOffset i (b.TableOffset + uint64 i * 8UL) (BigEndian.u64 (ReadOnlySpan table) (i * 8)))

            let tableBytes = uint64 header.RefcountTableClusters <<< header.ClusterBits
            give visitor (structure WalkItem.RefcountTable -1 header.RefcountTableOffset tableBytes 0)

            for (i, value) in Array.indexed (refcountTable read header) do
                give visitor (entry WalkItem.RefcountTableEntry -1 header.RefcountTableOffset i (header.RefcountTableOffset + uint64 i * 8UL) value)
