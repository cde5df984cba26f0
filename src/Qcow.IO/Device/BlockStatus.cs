// What a run of guest bytes is, as QEMU's block status reports it through a backing chain: where
// it was found (depth), whether that layer allocates it, reads as zeros, holds data, and where
// in which file the bytes lie.
namespace Qcow.IO;

/// <param name="Length">Bytes from the queried offset that share this status.</param>
/// <param name="Present">The layer at <paramref name="Depth"/> allocates the bytes (QEMU's BDRV_BLOCK_ALLOCATED).</param>
/// <param name="Zero">The bytes read as zeros.</param>
/// <param name="Data">The bytes are stored data (possibly compressed).</param>
/// <param name="HostOffset">Where they lie in <paramref name="File"/>; -1 when nowhere one can name (compressed, zero or unallocated).</param>
/// <param name="Depth">The chain layer that answered: 0 is the image itself, 1 its backing file, and so on.</param>
/// <param name="File">The file holding the bytes at <paramref name="HostOffset"/>, or null.</param>
internal readonly record struct BlockStatus(long Length, bool Present, bool Zero, bool Data, long HostOffset, int Depth, string? File)
{
    public bool HasOffset => HostOffset >= 0;

    /// <summary>The same status one layer further down the chain.</summary>
    public BlockStatus Deeper() => this with { Depth = Depth + 1 };
}
