/// Refcount structures rebuilt from counted references (what QEMU's check -r all does to a dirty
/// image): new refcount blocks and a new table, laid out from a free cluster on, counting
/// themselves. The header switches to them once they are durable; the old ones are then free.
module Qcow.Format.RefcountRebuild

open System

/// New refcount structures: `Blocks` at `BlocksOffset`, then the table.
type Rebuilt =
    { BlocksOffset: uint64
      Blocks: byte[]
      TableOffset: uint64
      TableClusters: uint32
      Table: byte[] }

/// Lays out refcount structures holding `counts` (references per host cluster, index = cluster)
/// from cluster `start` on, where nothing lives.
let layout (g: RefcountGeometry) (counts: uint32[]) (start: uint64) : Result<Rebuilt, FormatError> =
    let cs = 1UL <<< g.ClusterBits
    let perBlock = Refcount.entriesPerBlock g

    // Blocks must describe every cluster up to the end of the new structures, which are
    // themselves part of what they describe: grow both until they agree.
    let rec solve blocks tableClusters =
        let total = start + blocks + tableClusters
        let blocks' = (total + perBlock - 1UL) / perBlock
        let tableClusters' = max 1UL ((blocks' * 8UL + cs - 1UL) / cs)
        if blocks' = blocks && tableClusters' = tableClusters then blocks, tableClusters else solve blocks' tableClusters'

    let blocks, tableClusters = solve 1UL 1UL
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
            { BlocksOffset = start <<< g.ClusterBits
              Blocks = blockBytes
              TableOffset = (start + blocks) <<< g.ClusterBits
              TableClusters = uint32 tableClusters
              Table = table }
