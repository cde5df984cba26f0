/// The decisions of the offline changes, as qemu-img makes them: what an amend of compat level,
/// lazy refcounts and refcount width may be (qcow2_amend_options), and how a resize changes the
/// L1 table (qcow2_truncate). The shell carries the answers out on the file.
namespace Qcow.Format

/// What an amend asks for; None keeps a setting as it is.
type internal AmendRequest =
    { Version: int option
      LazyRefcounts: bool option
      RefcountOrder: int option }

/// What an amend does: the settings the header gets, and what must happen first.
type internal AmendPlan =
    { Version: int
      LazyRefcounts: bool
      RefcountOrder: int
      /// The refcount width changes: new refcount structures are built at it before the header switches.
      RebuildRefcounts: bool
      /// Version 3 to 2: zero clusters, which version 2 cannot hold, are expanded first.
      Downgrade: bool }

/// How a resize changes the L1 table.
type internal L1Change =
    /// The same table; the header drops the entries past the new end (a shrink frees their L2 tables).
    | KeepL1 of l1Size: uint32
    /// The same table, grown into the spare entries of its last cluster.
    | GrowInPlace of l1Size: uint32
    /// A larger table, placed past everything in use, with refcounts that count it.
    | MoveL1 of l1Size: uint32

/// Where a resize moves the L1 table: a larger table and refcount structures that count it, laid
/// out past everything in use, and the header that names both (written once they are durable).
type internal L1Move =
    { L1Offset: uint64
      /// The old table's entries are copied to the start of the new one.
      L1Bytes: int
      Refcounts: RefcountRebuild.Rebuilt
      Header: Header }

module internal Maintenance =
    /// qemu-img amend's rules (qcow2_amend_options, qcow2_downgrade), in its words when it
    /// refuses; `snapshots` are the image's internal snapshots.
    let amend (h: Header) (snapshots: Snapshot list) (r: AmendRequest) : Result<AmendPlan, string> =
        let version = defaultArg r.Version h.Version
        let lazyRefcounts = defaultArg r.LazyRefcounts (Header.hasLazyRefcounts h)
        let order = defaultArg r.RefcountOrder h.RefcountOrder
        let downgrade = version < h.Version

        if version < 3 && lazyRefcounts then
            Error(
                if r.LazyRefcounts = Some true then
                    "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)"
                else
                    "Cannot downgrade an image with lazy refcounts: amend with lazy_refcounts=off first"
            )
        elif version < 3 && order <> 4 then
            Error(
                if r.RefcountOrder.IsSome then
                    "Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)"
                else
                    "compat=0.10 requires refcount_bits=16"
            )
        elif downgrade && h.IncompatibleFeatures &&& Header.ExternalDataBit <> 0UL then
            Error "Cannot downgrade an image with a data file"
        // A snapshot of another size, or with more VM state than 32 bits hold, needs extra data
        // that version 2 programs may not know to keep.
        elif
            downgrade
            && snapshots
               |> List.exists (fun s -> s.VmStateSize > uint64 System.UInt32.MaxValue || defaultArg (Snapshot.diskSize s) h.Size <> h.Size)
        then
            Error "Internal snapshots prevent downgrade of image"
        elif downgrade && h.IncompatibleFeatures &&& ~~~(Header.DirtyBit ||| Header.CompressionTypeBit) <> 0UL then
            Error(sprintf "Cannot downgrade an image with incompatible features 0x%x set" (h.IncompatibleFeatures &&& ~~~(Header.DirtyBit ||| Header.CompressionTypeBit)))
        elif downgrade && h.CompressionType <> 0uy then
            Error "Cannot downgrade an image with zstd compression type: Qcow does not rewrite its compression type yet"
        else
            Ok
                { Version = version
                  LazyRefcounts = lazyRefcounts
                  RefcountOrder = order
                  RebuildRefcounts = order <> h.RefcountOrder
                  Downgrade = downgrade }

    /// qemu-img resize's refusal of a smaller size without --shrink.
    let refuseShrink (size: uint64) (newSize: uint64) (shrink: bool) =
        if newSize < size && not shrink then Error "Use the --shrink option to perform a shrink operation." else Ok()

    /// How a qcow2 image's L1 table takes `newSize`, or why it cannot (the table's limit).
    let l1Change (h: Header) (newSize: uint64) : Result<L1Change, string> =
        let g = Header.geometry h

        if not (Measure.fitsL1Limit (int64 newSize) h.ClusterBits false) || newSize > Limits.MaxHostOffset then
            Error "Failed to grow the L1 table: File too large"
        else
            let l1Size = uint32 (Geometry.l1EntriesFor g newSize)
            let room = Geometry.clustersFor g (uint64 h.L1Size * 8UL) <<< g.ClusterBits

            if l1Size <= h.L1Size then Ok(KeepL1 l1Size)
            elif uint64 l1Size * 8UL <= room then Ok(GrowInPlace l1Size)
            else Ok(MoveL1 l1Size)

    /// The plan for MoveL1: `counts` are the references to each host cluster (the header's
    /// reference to the old L1 table among them, the refcount structures not), `freeFrom` the
    /// first cluster past everything in use. The new table takes the clusters from there, the
    /// refcount structures the clusters after it; once the header names them, nothing refers to
    /// the old table or the old refcount structures.
    let moveL1 (h: Header) (counts: uint32[]) (freeFrom: uint64) (newSize: uint64) (l1Size: uint32) : Result<L1Move, FormatError> =
        let g = Header.geometry h
        let l1Clusters = Geometry.clustersFor g (uint64 l1Size * 8UL)
        let oldFirst = h.L1TableOffset >>> g.ClusterBits
        let oldClusters = Geometry.clustersFor g (uint64 h.L1Size * 8UL)

        let countAfter (c: uint64) =
            if c >= freeFrom then 1u
            elif c >= uint64 counts.Length then 0u
            elif c >= oldFirst && c < oldFirst + oldClusters then counts[int c] - 1u
            else counts[int c]

        let newCounts = Array.init (int (freeFrom + l1Clusters)) (uint64 >> countAfter)

        RefcountRebuild.layout (Header.refcountGeometry h) newCounts (freeFrom + l1Clusters)
        |> Result.map (fun rebuilt ->
            let l1Offset = freeFrom <<< g.ClusterBits

            { L1Offset = l1Offset
              L1Bytes = int (l1Clusters <<< g.ClusterBits)
              Refcounts = rebuilt
              Header = Header.resizedWithRefcounts h newSize l1Offset l1Size rebuilt.TableOffset rebuilt.TableClusters })
