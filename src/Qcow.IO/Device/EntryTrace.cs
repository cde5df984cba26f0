// The path from a guest offset to its bytes, as the tables record it: which L1 and L2 entries,
// where they lie in the file, and their raw values.
namespace Qcow.IO;

/// <param name="L1Index">offset >> (cluster_bits + l2_bits).</param>
/// <param name="L1EntryAt">Host offset of the L1 entry.</param>
/// <param name="L1Entry">Its raw value.</param>
/// <param name="L2Table">The L2 table it names; 0 when none.</param>
/// <param name="L2Index">(offset >> cluster_bits) &amp; (2^l2_bits − 1).</param>
/// <param name="L2EntryAt">Host offset of the L2 entry; -1 without an L2 table.</param>
/// <param name="L2Entry">Its raw value; 0 without an L2 table.</param>
/// <param name="L2Bitmap">The subcluster bitmap of an extended L2 entry; 0 otherwise.</param>
internal sealed record EntryTrace(int L1Index, long L1EntryAt, ulong L1Entry, ulong L2Table, int L2Index, long L2EntryAt, ulong L2Entry, ulong L2Bitmap);
