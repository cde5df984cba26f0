/// Growing a full refcount table, after QEMU's qcow2_refcount_area: new refcount blocks and a
/// larger table are laid out past everything the old table can describe, describing themselves;
/// the header switches to the new table once it is durable, and the old table is freed after.
module internal Qcow.Format.RefcountGrowth

/// Steps that grow the table so that it has room for at least one more block.
/// The old table's entries come from the view; the new table has 1.5× headroom, as QEMU's.
let plan (g: RefcountGeometry) (view: IRefcountView) (oldTableOffset: uint64) (oldTableClusters: uint32) : PlanOutcome =
    let perBlock = Refcount.entriesPerBlock g
    let oldEntries = view.TableEntries
    let first = oldEntries * perBlock
    let entriesPerCluster = Refcount.tableEntriesIn g 1UL

    let rec layout (blocks: uint64) =
        let wanted = oldEntries + blocks
        let withHeadroom = wanted + wanted / 2UL
        let clusters = (withHeadroom + entriesPerCluster - 1UL) / entriesPerCluster

        if blocks * perBlock >= blocks + clusters then blocks, clusters else layout (blocks + 1UL)

    let blocks, clusters = layout 1UL
    let tableOffset = (first + blocks) <<< g.ClusterBits
    let inUse = blocks + clusters

    if clusters <<< g.ClusterBits > Limits.MaxRefcountTableBytes then
        Refused(Inconsistent(Structure.RefcountTable, 48UL, "the refcount table would exceed QEMU's 8 MiB limit"))
    elif (first + inUse) <<< g.ClusterBits >= Limits.MaxHostOffset then
        Refused(Inconsistent(Structure.RefcountTable, 48UL, "no room for a larger refcount table below 2^56"))
    else
        let newBlocks =
            [ for i in 0UL .. blocks - 1UL ->
                  let coverStart = first + i * perBlock
                  let inUseStart = max coverStart first
                  let inUseEnd = min (coverStart + perBlock) (first + inUse)

                  { Offset = (first + i) <<< g.ClusterBits
                    TableIndex = oldEntries + i
                    FirstInUse = inUseStart
                    InUseCount = if inUseEnd > inUseStart then inUseEnd - inUseStart else 0UL } ]

        let entries =
            Array.init (int (Refcount.tableEntriesIn g clusters)) (fun i ->
                let i = uint64 i

                if i < oldEntries then view.BlockOffset i
                elif i < oldEntries + blocks then (first + i - oldEntries) <<< g.ClusterBits
                else 0UL)

        let oldFirst = oldTableOffset >>> g.ClusterBits

        Planned
            { Steps =
                [ for b in newBlocks -> CreateRefcountBlock b ]
                @ [ CreateRefcountTable(tableOffset, uint32 clusters, entries)
                    SwitchRefcountTable(tableOffset, uint32 clusters) ]
                @ [ for c in oldFirst .. oldFirst + uint64 oldTableClusters - 1UL -> Release(c, false) ]
              NextFreeCluster = first + inUse
              Clusters = 0 }
