// How the shell opens one image: access, cache size, logging, and the opener for backing files.
using Microsoft.Extensions.Logging;

namespace Qcow.IO;

/// <param name="Writable">Open for writing.</param>
/// <param name="ForceCorrupt">Open read-write even when the corrupt bit is set (for repair).</param>
/// <param name="CacheBytes">Memory for L2 tables; refcount blocks get a quarter of it.</param>
/// <param name="Logger">Where the shell logs.</param>
/// <param name="PassDiscards">Clusters a discard frees give their space back to the file system (holes punched), as QEMU's discard=unmap.</param>
/// <param name="Snapshot">The internal snapshot a read-only open reads instead of the active state; null for the active state.</param>
internal sealed record DeviceOptions(bool Writable, bool ForceCorrupt, long CacheBytes, ILogger Logger, bool PassDiscards = false, SnapshotChoice? Snapshot = null);

/// <summary>
/// The internal snapshot a read-only open reads instead of the active state: by ID, by name, or
/// both; <see cref="IdOrName"/> tries the one string as an ID, then as a name (qemu-img convert -l NAME).
/// </summary>
internal sealed record SnapshotChoice(string? Id, string? Name, bool IdOrName = false);

/// <summary>Opens the image an image names as its backing file, read-only; null leaves it unopened (qemu-img info without --backing-chain).</summary>
internal delegate IBlockDevice? BackingOpener(string name, string? format);

/// <summary>Opens the external data file an image names, read-only; null leaves it unopened (its data cannot be read then).</summary>
internal delegate IStorage? DataFileOpener(string name);
