/// A new metadata generation: how Qcow changes internal snapshots. The active L1 table, every L2
/// table whose COPIED flags must change, the snapshot table and refcount structures that count
/// all of them are written where nothing the current header names lives; one write of the
/// header's first sector (the size, L1, refcount and snapshot fields all lie in it) then switches
/// to them. A crash before that write leaves the old image as it was, the new clusters having
/// been free; after it, the new one, complete. No moment exists at which a refcount and a COPIED
/// flag disagree, as they do midway through QEMU's in-place update (which qemu-img check reports
/// as errors).
module internal Qcow.Format.Generation

/// An L1 or L2 entry with COPIED (bit 63) set exactly when the cluster it names has one reference.
let withCopied (references: uint32) (entry: uint64) =
    if references = 1u then entry ||| L1Entry.CopiedFlag else entry &&& ~~~L1Entry.CopiedFlag

/// An L2 table's entries with the COPIED flags `references` (per host cluster) call for: normal
/// and allocated zero clusters carry it when their cluster has one reference, as QEMU's check
/// demands; every other entry stays as it is. None when no entry changes.
let l2Flags (format: EntryFormat) (clusterBits: int) (references: uint64 -> uint32) (entries: uint64[]) =
    let fixedEntry entry =
        match L2Entry.clusterType format entry with
        | ClusterType.Normal
        | ClusterType.ZeroAllocated -> withCopied (references ((entry &&& L2Entry.OffsetMask) >>> clusterBits)) entry
        | _ -> entry

    let fixedEntries = Array.map fixedEntry entries
    if fixedEntries = entries then None else Some fixedEntries

/// The active L1 entries with COPIED set on those whose L2 table has one reference.
let l1Flags (clusterBits: int) (references: uint64 -> uint32) (entries: uint64[]) =
    entries
    |> Array.map (fun entry ->
        let table = entry &&& L1Entry.OffsetMask
        if table = 0UL then entry else withCopied (references (table >>> clusterBits)) entry)

/// The first run of `count` clusters that `busy` leaves free, from cluster `from` on.
let freeRun (busy: uint64 -> bool) (count: uint64) (from: uint64) =
    let rec search start =
        let rec conflict c =
            if c = start + count then None
            elif busy c then Some c
            else conflict (c + 1UL)

        match conflict start with
        | None -> start
        | Some c -> search (c + 1UL)

    search from

/// Refcount structures holding `counts` in the first free run that holds them (the run's length
/// depends on where it starts, so each candidate is sized from its own start).
let refcountsWhereFree (g: RefcountGeometry) (counts: uint32[]) (busy: uint64 -> bool) =
    let rec attempt from =
        let start = freeRun busy 1UL from
        let blocks, tableClusters = RefcountRebuild.sizeFrom g (uint64 counts.Length) start
        let fit = freeRun busy (blocks + tableClusters) start
        // Structures that start later may need more clusters: size them again from there.
        if fit = start then RefcountRebuild.layout g counts start else attempt fit

    attempt 1UL
