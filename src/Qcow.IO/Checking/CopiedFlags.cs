// COPIED flags against stored refcounts, over the active tree, as QEMU's check_oflag_copied
// does: an L1 or L2 entry carries COPIED exactly when its cluster's refcount is 1. A fold over the
// table walk; a repair sets or clears the flags to agree, once the refcounts are right.
using System.Buffers.Binary;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

internal sealed class CopiedFlags : IWalkVisitor
{
    private readonly IStorage _storage;
    private readonly Header _header;
    private readonly EntryFormat _format;
    private readonly StoredRefcounts _stored;
    private readonly List<string> _messages;
    private readonly bool _repair;
    private long _mismatches;

    private CopiedFlags(IStorage storage, Header header, StoredRefcounts stored, List<string> messages, bool repair)
    {
        _storage = storage;
        _header = header;
        _format = HeaderModule.entryFormat(header);
        _stored = stored;
        _messages = messages;
        _repair = repair;
    }

    /// <summary>
    /// Counts the entries whose flag disagrees with the stored refcount, adding a message for
    /// each; with <paramref name="repair"/>, makes them agree.
    /// </summary>
    public static long Check(IStorage storage, Header header, StoredRefcounts stored, List<string> messages, bool repair)
    {
        var check = new CopiedFlags(storage, header, stored, messages, repair);
        ImageWalk.Walk(storage, header, WalkScope.ActiveTree, check);
        if (repair && check._mismatches > 0)
        {
            storage.Flush();
        }

        return check._mismatches;
    }

    /// <summary>One item of the walk: an entry whose COPIED flag its cluster's refcount contradicts is reported, and with a repair rewritten.</summary>
    public void Visit(in Walked item)
    {
        if (RefcountOf(item) is not { } refcount || (refcount == 1) == ((item.Entry & L1Entry.CopiedFlag) != 0))
        {
            return;
        }

        // COPIED is bit 63 in L1 and L2 entries alike.
        _mismatches++;
        string verdict = _repair ? "Repairing" : "ERROR";
        _messages.Add(item.Item == WalkItem.L1Entry
            ? $"{verdict} OFLAG_COPIED L2 cluster: l1_index={item.Index} l1_entry={item.Entry:x} refcount={refcount}"
            : $"{verdict} OFLAG_COPIED data cluster: l2_entry={item.Entry:x} refcount={refcount}");
        if (_repair)
        {
            byte[] bytes = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(bytes, refcount == 1 ? item.Entry | L1Entry.CopiedFlag : item.Entry & ~L1Entry.CopiedFlag);
            _storage.Write((long)item.EntryAt, bytes);
        }
    }

    /// <summary>
    /// The stored refcount of the cluster an entry names, or null when the entry names none to
    /// check (an unallocated, zero or compressed L2 entry; an L1 entry of offset 0 and the L2
    /// table it would name) or the refcount cannot be read. Clusters of an external data file
    /// count as referenced once, as QEMU counts them.
    /// </summary>
    private ulong? RefcountOf(in Walked item) => item.Item switch
    {
        WalkItem.L1Entry when (item.Entry & L1Entry.OffsetMask) != 0 => _stored.Get((item.Entry & L1Entry.OffsetMask) >> _header.ClusterBits),
        WalkItem.L2Entry when item.Offset != 0 && item.Type is ClusterType.Normal or ClusterType.ZeroAllocated =>
            _format.HasExternalData ? 1 : _stored.Get((item.Entry & L2Entry.OffsetMask) >> _header.ClusterBits),
        _ => null,
    };
}
