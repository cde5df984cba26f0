/// Refcount structures rebuilt from counted references: new refcount blocks and a new table,
/// counting themselves, either laid out together from a free cluster on (a resize, an amend of the
/// refcount width) or each in the first free clusters the counts leave, as qemu-img check -r all
/// places them. The header switches to them once they are durable; the old ones are then free.
module internal Qcow.Format.RefcountRebuild

open System

/// New refcount structures: the blocks, each run of them at its offset, and the table.
type Rebuilt =
    { Blocks: (uint64 * byte[]) list
      TableOffset: uint64
      TableClusters: uint32
      Table: byte[] }

/// The first cluster past everything the tables name (`referenced`: one past the last cluster a
/// reference names), where new structures can go without landing on one still in use; references
/// absurdly far past the file's `inFile` clusters (a hostile image) are not followed there.
let freeFrom (inFile: uint64) (referenced: uint64) (clusterBits: int) =
    if referenced <= 2UL * inFile + (Limits.MaxPastEndBytes >>> clusterBits) then max inFile referenced else inFile

/// How many blocks and table clusters refcount structures need that describe `clusters` clusters
/// and themselves, laid out from cluster `start` on: the blocks must describe every cluster up
/// to the end of the new structures, which are part of what they describe, so both grow until
/// they agree.
let sizeFrom (g: RefcountGeometry) (clusters: uint64) (start: uint64) =
    let cs = 1UL <<< g.ClusterBits
    let perBlock = Refcount.entriesPerBlock g

    let rec solve blocks tableClusters =
        let total = max clusters (start + blocks + tableClusters)
        let blocks' = (total + perBlock - 1UL) / perBlock
        let tableClusters' = max 1UL ((blocks' * 8UL + cs - 1UL) / cs)
        if blocks' = blocks && tableClusters' = tableClusters then blocks, tableClusters else solve blocks' tableClusters'

    solve 1UL 1UL

/// Lays out refcount structures holding `counts` (references per host cluster, index = cluster)
/// from cluster `start` on, where nothing lives.
let layout (g: RefcountGeometry) (counts: uint32[]) (start: uint64) : Result<Rebuilt, FormatError> =
    let cs = 1UL <<< g.ClusterBits
    let perBlock = Refcount.entriesPerBlock g
    let blocks, tableClusters = sizeFrom g (uint64 counts.Length) start
    let largest = if counts.Length = 0 then 0u else Array.max counts

    if tableClusters <<< g.ClusterBits > Limits.MaxRefcountTableBytes then
        Error(Inconsistent(Structure.RefcountTable, 48UL, "the rebuilt refcount table would exceed QEMU's 8 MiB limit"))
    elif uint64 largest > Refcount.maxValue g then
        Error(Inconsistent(Structure.RefcountBlock, 0UL, sprintf "a cluster has %d references, more than %d-bit refcounts hold" largest (Refcount.bits g)))
    else
        let blockBytes = Array.zeroCreate<byte> (int (blocks * cs))

        let set (cluster: uint64) (value: uint64) =
            let block = Span(blockBytes, int ((cluster / perBlock) * cs), int cs)
            Refcount.set g.RefcountOrder block (int (cluster % perBlock)) value

        counts |> Array.iteri (fun c n -> if n <> 0u then set (uint64 c) (uint64 n))

        for c in start .. start + blocks + tableClusters - 1UL do
            set c 1UL

        let table = Array.zeroCreate<byte> (int (tableClusters * cs))

        for i in 0UL .. blocks - 1UL do
            BigEndian.putU64 (Span table) (int i * 8) ((start + i) <<< g.ClusterBits)

        Ok
            { Blocks = [ start <<< g.ClusterBits, blockBytes ]
              TableOffset = (start + blocks) <<< g.ClusterBits
              TableClusters = uint32 tableClusters
              Table = table }

/// QEMU's rebuild_refcount_structure: `counts` are the references to each of the image's
/// `clusters` host clusters, the old refcount structures included (they stay in use until the
/// header names the new ones, and are leaked afterwards). Walking the clusters in order, each
/// block that has a cluster in use gets the first free cluster from its own range on (so no
/// block already written changes); then the table takes the first free run from cluster 0, and
/// the blocks covering it are visited again, until the table stops growing.
let placeInHoles (g: RefcountGeometry) (counts: uint32[]) (clusters: uint64) : Result<Rebuilt, FormatError> =
    let cs = 1UL <<< g.ClusterBits
    let perBlock = Refcount.entriesPerBlock g
    let inUse = ResizeArray<uint64>(Seq.init (int clusters) (fun c -> uint64 counts[c]))
    let count (c: uint64) = if c < uint64 inUse.Count then inUse[int c] else 0UL
    let mutable tableEntries = 0UL
    let blockAt = Collections.Generic.Dictionary<uint64, uint64>()

    // The first run of n free clusters from `from` on; past the end the image grows.
    let allocate (n: uint64) (from: uint64) =
        let mutable c = from
        let mutable run = 0UL
        while c < uint64 inUse.Count && run < n do
            run <- if count c = 0UL then run + 1UL else 0UL
            c <- c + 1UL
        let first = c - run
        while uint64 inUse.Count < first + n do
            inUse.Add 0UL
        for i in first .. first + n - 1UL do
            inUse[int i] <- 1UL
        first

    // Gives every block with a cluster in use in [first, last) an offset; whether the table grew.
    let placeBlocks (first: uint64) (last: uint64) =
        let mutable grown = false
        let mutable last = last
        let mutable c = first
        while c < last do
            if count c = 0UL then
                c <- c + 1UL
            else
                let index = c / perBlock
                let start = index * perBlock
                if not (blockAt.ContainsKey index) then
                    let at = allocate 1UL start
                    last <- max last (at + 1UL)
                    if tableEntries <= index then
                        tableEntries <- (((index + 1UL) * 8UL + cs - 1UL) / cs) * cs / 8UL
                        grown <- true
                    blockAt[index] <- at
                c <- start + perBlock
        grown

    placeBlocks 0UL clusters |> ignore
    let mutable tableAt = 0UL
    let mutable tableClusters = 0UL
    let mutable growing = true
    while growing do
        tableClusters <- (tableEntries * 8UL + cs - 1UL) / cs
        tableAt <- allocate tableClusters 0UL
        growing <- placeBlocks tableAt (tableAt + tableClusters)

    let largest = Seq.max inUse
    if tableClusters <<< g.ClusterBits > Limits.MaxRefcountTableBytes then
        Error(Inconsistent(Structure.RefcountTable, 48UL, "the rebuilt refcount table would exceed QEMU's 8 MiB limit"))
    elif largest > Refcount.maxValue g then
        Error(Inconsistent(Structure.RefcountBlock, 0UL, sprintf "a cluster has %d references, more than %d-bit refcounts hold" largest (Refcount.bits g)))
    else
        let block index =
            let bytes = Array.zeroCreate<byte> (int cs)
            let start = index * perBlock
            for c in start .. min (start + perBlock) (uint64 inUse.Count) - 1UL do
                if inUse[int c] <> 0UL then Refcount.set g.RefcountOrder (Span bytes) (int (c - start)) inUse[int c]
            blockAt[index] <<< g.ClusterBits, bytes

        let table = Array.zeroCreate<byte> (int (tableClusters * cs))
        for KeyValue(index, at) in blockAt do
            BigEndian.putU64 (Span table) (int index * 8) (at <<< g.ClusterBits)

        Ok
            { Blocks = blockAt.Keys |> Seq.sort |> Seq.map block |> List.ofSeq
              TableOffset = tableAt <<< g.ClusterBits
              TableClusters = uint32 tableClusters
              Table = table }
