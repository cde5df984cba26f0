// Writing guest bytes, zeros and discards: an overwrite of a cluster this image alone owns is
// one positional write; anything else asks the planner for a plan and executes it.
using System;
using System.Threading;
using System.Threading.Tasks;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

internal sealed partial class QcowDevice
{
    /// <summary>
    /// Freed space worth a flush: clusters are free for reuse only once the release is durable,
    /// so a write that would grow the file while this much waits to be released flushes first
    /// and takes the freed clusters, as QEMU reuses them (its free-cluster search starts low).
    /// </summary>
    private const long ReuseFlushBytes = 1 << 20;

    public void Write(long offset, ReadOnlySpan<byte> source) => Change(offset, source.Length, WriteKind.WriteBytes, source);

    public void WriteZeroes(long offset, long length, bool mayUnmap = false) =>
        Change(offset, length, WriteKind.NewWriteZeroes(new ZeroWrite(mayUnmap, false)), default);

    /// <summary>Discards whole clusters only, as QEMU does; a partial cluster keeps its data.</summary>
    public void Discard(long offset, long length) => Change(offset, length, WriteKind.DiscardCluster, default);

    /// <summary>Unmaps whole clusters outright, whatever the version: a shrink's clusters past the new end, as QEMU's full discard.</summary>
    public void Drop(long offset, long length) => Change(offset, length, WriteKind.DropCluster, default);

    /// <summary>
    /// Writes as <see cref="Write"/> does; the bytes of clusters this image alone owns go out as
    /// asynchronous file writes outside the lock (counted in flight, as reads are, so that no
    /// flush frees such a cluster meanwhile); the rest goes through the planner as
    /// <see cref="Write"/> takes it.
    /// </summary>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken)
    {
        while (source.Length > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            (ulong host, int n, int ticket) = BeginInPlaceWrite(offset, source.Length);
            if (host == ulong.MaxValue)
            {
                Write(offset, source.Span[..n]);
            }
            else
            {
                try
                {
                    DataStorage.Announce(QcowDriverEvent.WriteAio);
                    await DataStorage.WriteAsync((long)host, source[..n], cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    _ioInFlight.Exit(ticket);
                }
            }

            offset += n;
            source = source[n..];
        }
    }

    /// <summary>
    /// Under the lock: the bytes from <paramref name="offset"/> to the end of their cluster (at
    /// most <paramref name="length"/>), and where they go in place with the write counted in
    /// flight; host ulong.MaxValue when the cluster needs the planner.
    /// </summary>
    private (ulong Host, int Length, int Ticket) BeginInPlaceWrite(long offset, int length)
    {
        lock (_sync)
        {
            ThrowUnlessWritable();
            ArgumentOutOfRangeException.ThrowIfNegative(offset);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length - offset);
            int inCluster = (int)(offset & (Layout.ClusterSize - 1));
            int n = Math.Min(length, Layout.ClusterSize - inCluster);
            ulong entry = EntryFor(offset, out int l1Index, out ulong table);
            if (!Layout.HasRefcounts || table == 0)
            {
                return (ulong.MaxValue, n, 0);
            }

            RefuseBrokenMapping(offset, entry, table, checkEntry: true);
            if (OwnedHost(offset, entry, l1Index) is not { } owned)
            {
                return (ulong.MaxValue, n, 0);
            }

            ulong host = owned + (ulong)inCluster;
            _metadata.GuardData(host, (ulong)n);
            _bitmaps?.Track(offset, n);
            return (host, n, _ioInFlight.Enter());
        }
    }

    /// <summary>What every write asks first: the image is open, writable, and not marked corrupt.</summary>
    private void ThrowUnlessWritable()
    {
        ThrowIfDisposed();
        if (!CanWrite)
        {
            throw new InvalidOperationException($"{Path} is open read-only");
        }

        ThrowIfMarkedCorrupt();
    }

    /// <summary>
    /// Before anything is planned or written, so that a refused request changes nothing: no change
    /// through an L2 table past the end of the file, nor (with <paramref name="checkEntry"/>)
    /// through an entry mapped far past it.
    /// </summary>
    private void RefuseBrokenMapping(long guest, ulong entry, ulong table, bool checkEntry)
    {
        _metadata.ThrowIfPastEnd(table);
        if (checkEntry)
        {
            ThrowIfMappedFarPastEnd(entry, guest, table + (ulong)(GeometryModule.l2Index(Layout.Geometry, (ulong)guest) * Layout.Geometry.L2EntryBytes));
        }
    }

    /// <summary>The host cluster a write of bytes at <paramref name="guest"/> goes to in place, by the core's rule (no plan needed); null when it needs the planner.</summary>
    private ulong? OwnedHost(long guest, ulong entry, int l1Index) =>
        Planner.inPlaceHost(Layout.EntryFormat, _metadata.L1Entry(l1Index), Classify(entry, guest)) is { IsSome: true } host ? host.Value : null;

    private void Change(long offset, long length, WriteKind kind, ReadOnlySpan<byte> source)
    {
        lock (_sync)
        {
            ThrowUnlessWritable();

            ArgumentOutOfRangeException.ThrowIfNegative(offset);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length - offset);
            if (!kind.IsDropCluster)
            {
                _bitmaps?.Track(offset, length);
            }

            int clusterSize = Layout.ClusterSize;
            WriteBatch batch = WriteBatch.Empty;
            try
            {
                for (long done = 0; done < length;)
                {
                    long guest = offset + done;
                    int inCluster = (int)(guest & (clusterSize - 1));
                    if (inCluster == 0 && ((ulong)guest & ((1UL << Layout.L1Shift) - 1)) == 0)
                    {
                        // A new L2 table may be loaded, created or evicted from here on: data
                        // joined so far must be written before any L2 table that points at it.
                        batch = batch.Written(this, source);
                    }

                    (Placement placement, int n) = kind.IsWriteBytes
                        ? WriteRun(guest, length - done, source[(int)done..])
                        : ChangeCluster(guest, inCluster, (int)Math.Min(length - done, clusterSize - inCluster), kind);
                    if (placement.Host != ulong.MaxValue)
                    {
                        batch = batch.Joined(placement, (int)done, n, this, source);
                    }

                    done += n;
                }
            }
            finally
            {
                // Bytes already placed are written even when a later cluster fails, unless the
                // failure marked the image corrupt: then nothing more is written.
                if (!_metadata.IsCorrupt)
                {
                    batch.Written(this, source);
                }
            }
        }
    }

    /// <summary>
    /// Request bytes bound for consecutive host offsets, written as one: a run of new clusters
    /// allocated one after another becomes one write instead of one per cluster. The steps held
    /// back until those bytes are on the file (the L2 entries mapping them) run after the write,
    /// and not at all when it fails.
    /// </summary>
    private readonly record struct WriteBatch(ulong Host, int SourceOffset, int Length, List<Step>? AfterWrite)
    {
        public static WriteBatch Empty => new(ulong.MaxValue, 0, 0, null);

        public WriteBatch Joined(Placement placement, int sourceOffset, int length, QcowDevice device, ReadOnlySpan<byte> source)
        {
            if (Length > 0 && Host + (ulong)Length == placement.Host && SourceOffset + Length == sourceOffset)
            {
                List<Step>? afterWrite = AfterWrite;
                if (placement.AfterWrite != null)
                {
                    afterWrite ??= [];
                    afterWrite.AddRange(placement.AfterWrite);
                }

                return this with { Length = Length + length, AfterWrite = afterWrite };
            }

            Written(device, source);
            return new WriteBatch(placement.Host, sourceOffset, length, placement.AfterWrite);
        }

        public WriteBatch Written(QcowDevice device, ReadOnlySpan<byte> source)
        {
            if (Length > 0)
            {
                device._metadata.WriteData(Host, source.Slice(SourceOffset, Length));
                device._executor.RunAfterWrite(AfterWrite);
            }

            return Empty;
        }
    }

    /// <summary>Where a cluster's request bytes are still to be written (ulong.MaxValue: nowhere), and what waits for them.</summary>
    private readonly record struct Placement(ulong Host, List<Step>? AfterWrite)
    {
        public static Placement None => new(ulong.MaxValue, null);
    }

    /// <summary>
    /// Writes request bytes from <paramref name="guest"/> on, as far as one plan carries them: a
    /// cluster this image owns (in place, no plan), or the run of clusters under one L2 table that
    /// the planner gives new clusters. Returns where the bytes are still to be written, and how
    /// many from <paramref name="guest"/> on that covers.
    /// </summary>
    private (Placement Placement, int Length) WriteRun(long guest, long remaining, ReadOnlySpan<byte> source)
    {
        int clusterSize = Layout.ClusterSize;
        int inCluster = (int)(guest & (clusterSize - 1));
        ulong entry = EntryFor(guest, out int l1Index, out ulong table);
        if (table != 0)
        {
            RefuseBrokenMapping(guest, entry, table, checkEntry: true);
            if (OwnedHost(guest, entry, l1Index) is { } host)
            {
                return (new Placement(host + (ulong)inCluster, null), (int)Math.Min(remaining, clusterSize - inCluster));
            }
        }

        // The entries of the clusters the request touches under this table, up to the first one
        // written in place (where any run ends).
        long first = guest - inCluster;
        long end = Math.Min(guest + remaining, ((guest >> Layout.L1Shift) + 1) << Layout.L1Shift);
        ulong[] entries;
        if (table == 0)
        {
            entries = new ulong[(end - first + clusterSize - 1) / clusterSize];
        }
        else
        {
            var found = new List<ulong> { entry };
            for (long at = first + clusterSize; at < end; at += clusterSize)
            {
                ulong next = EntryFor(at, out _, out _);
                RefuseBrokenMapping(at, next, table, checkEntry: true);
                if (OwnedHost(at, next, l1Index) is not null)
                {
                    break;
                }

                found.Add(next);
            }

            entries = [.. found];
        }

        int length = (int)(end - guest);
        RunRequest request = new((ulong)first, l1Index, _metadata.L1Entry(l1Index), GeometryModule.l2Index(Layout.Geometry, (ulong)first), entries, inCluster, length, WriteKind.WriteBytes, 0);
        (Placement placement, int clusters) = Run(request, source);
        return (placement, (int)Math.Min(remaining, ((long)clusters * clusterSize) - inCluster));
    }

    /// <summary>Changes one cluster by a zero write or discard; returns where nothing is left to write, and the bytes covered.</summary>
    private (Placement Placement, int Length) ChangeCluster(long guest, int inCluster, int length, WriteKind kind)
    {
        ulong entry = EntryFor(guest, out int l1Index, out ulong table);
        int clusterSize = Layout.ClusterSize;

        // A request that reaches the end of the image covers the last, partial cluster whole.
        bool reachesEnd = guest + length >= Length;
        int effective = reachesEnd && inCluster == 0 ? clusterSize : length;
        if ((kind.IsDiscardCluster || kind.IsDropCluster) && effective != clusterSize)
        {
            return (Placement.None, length);
        }

        if (kind is WriteKind.WriteZeroes zero && (inCluster != 0 || effective != clusterSize))
        {
            long start = guest - inCluster;
            bool rest = ReadsAsZeroes(start, inCluster) && (reachesEnd || ReadsAsZeroes(guest + length, clusterSize - inCluster - length));
            kind = WriteKind.NewWriteZeroes(new ZeroWrite(zero.Item.MayUnmap, rest));
        }

        if (table != 0)
        {
            RefuseBrokenMapping(guest, entry, table, checkEntry: !(kind.IsDiscardCluster || kind.IsDropCluster));
        }

        Run(RequestFor(guest - inCluster, l1Index, entry, inCluster, effective, kind), default);
        return (Placement.None, length);
    }

    /// <summary>
    /// Plans a request, loading refcount blocks and growing the refcount table as the planner asks,
    /// and executes the plan. Returns where the request's bytes are still to be written and how
    /// many of the request's clusters the plan carried out.
    /// </summary>
    private (Placement Placement, int Clusters) Run(RunRequest request, ReadOnlySpan<byte> piece)
    {
        while (true)
        {
            PlanOutcome outcome = Planner.plan(Context(), request);
            switch (outcome)
            {
                case PlanOutcome.Planned planned when ShouldReuseFreedSpace(planned.Item, request):
                    FlushMetadata();
                    break;
                case PlanOutcome.Planned planned:
                    (ulong host, List<Step>? afterWrite) = _executor.Execute(planned.Item, piece);
                    if (Layout.HasRefcounts)
                    {
                        _metadata.FirstFreeCluster = planned.Item.NextFreeCluster;
                        _metadata.FileEnd = Math.Max(_metadata.FileEnd, planned.Item.NextFreeCluster << Layout.Geometry.ClusterBits);
                    }
                    else
                    {
                        _metadata.FileEnd = planned.Item.NextFreeCluster;
                    }

                    _inflatedHost = ulong.MaxValue;
                    return (new Placement(host, afterWrite), planned.Item.Clusters);
                default:
                    request = request.ResumingAt(Satisfy(outcome, request.SearchFrom));
                    break;
            }
        }
    }

    /// <summary>
    /// Gives the planner what it asked for instead of a plan: the refcount block loaded, or the
    /// refcount table grown; a refusal is thrown. Returns where its search for free clusters resumes.
    /// </summary>
    private ulong Satisfy(PlanOutcome unmet, ulong searchFrom)
    {
        switch (unmet)
        {
            case PlanOutcome.NeedRefcountBlock need:
                _metadata.LoadRefcountBlock(need.tableIndex);
                return need.searchFrom;
            case PlanOutcome.Refused refused:
                throw FormatErrors.ToException(refused.Item, Path);
            default:
                GrowRefcountTable();
                return searchFrom;
        }
    }

    /// <summary>
    /// A plan that grows the file while enough freed space waits for its release to be durable.
    /// Compressed writes do not wait: their packing cursor is planned against the clusters as
    /// they are before the flush.
    /// </summary>
    private bool ShouldReuseFreedSpace(Plan plan, RunRequest request) =>
        Layout.HasRefcounts
        && !request.Kind.IsWriteCompressed
        && (plan.NextFreeCluster << Layout.Geometry.ClusterBits) > _metadata.FileEnd
        && ((long)_metadata.PendingReleases << Layout.Geometry.ClusterBits) >= ReuseFlushBytes;

    /// <summary>
    /// Whether a range, cut at the end of the image, reads as zeros by block status, run after
    /// run through the backing chain, as QEMU's qcow2 driver decides it (is_zero).
    /// </summary>
    private bool ReadsAsZeroes(long offset, long length)
    {
        long end = Math.Min(offset + length, Length);
        for (long at = offset; at < end;)
        {
            BlockStatus status = Status(at, end - at);
            if (!status.Zero || status.Length <= 0)
            {
                return false;
            }

            at += status.Length;
        }

        return true;
    }

    /// <summary>
    /// Refuses a cluster whose entry points more than MaxPastEndBytes past the end of the file.
    /// Reading one gives zeros, as in QEMU, but writing in place (or zeros in place) would grow
    /// the file to wherever a hostile entry points.
    /// </summary>
    private void ThrowIfMappedFarPastEnd(ulong entry, long guest, ulong entryAt)
    {
        // An invalid entry is refused further on, by the error that says what is wrong with it.
        var classified = L2Entry.classify(Layout.EntryFormat, entry);
        L2Mapping mapping = classified.IsOk ? classified.ResultValue : L2Mapping.Unallocated;
        ulong host = mapping.IsNormal ? mapping.Host : mapping.IsZeroAllocated ? mapping.ZeroHost : 0;
        if (host >= _metadata.FileEnd + Limits.MaxPastEndBytes)
        {
            throw FormatErrors.ToException(FormatError.NewEntryOutOfRange(Structure.L2Table, entryAt, entry), Path);
        }
    }

    /// <summary>
    /// Writes one whole cluster (or the image's last, partial one) as a compressed stream, as
    /// qemu-io's write -c and qemu-img convert -c do: only where nothing is allocated, packed
    /// after the previous stream; data that does not compress below a cluster is written plainly.
    /// </summary>
    public void WriteCompressed(long offset, ReadOnlySpan<byte> data)
    {
        lock (_sync)
        {
            ThrowUnlessWritable();
            int cs = Layout.ClusterSize;
            if ((offset & (cs - 1)) != 0 || (data.Length != cs && offset + data.Length != Length) || data.Length > cs)
            {
                throw new ArgumentException("a compressed write covers one whole cluster, or the last one up to the end of the image");
            }

            _bitmaps?.Track(offset, data.Length);

            // The last cluster of an image may be short: it is compressed padded with zeros.
            ReadOnlySpan<byte> cluster = data;
            if (data.Length < cs)
            {
                byte[] padded = new byte[cs];
                data.CopyTo(padded);
                cluster = padded;
            }

            byte[] compressed = _compressed ??= new byte[cs - 1];
            int n = _codec.Compress(cluster, compressed);
            if (n < 0)
            {
                Change(offset, data.Length, WriteKind.WriteBytes, data);
                return;
            }

            ulong entry = EntryFor(offset, out int l1Index, out _);
            (Placement placement, _) = Run(RequestFor(offset, l1Index, entry, 0, n, WriteKind.NewWriteCompressed(_packAt)), compressed.AsSpan(0, n));
            ulong host = placement.Host;
            _metadata.WriteData(host, compressed.AsSpan(0, n));
            _executor.RunAfterWrite(placement.AfterWrite);
            _packAt = Planner.nextPackAt(Layout.Geometry, host, n);
        }
    }

    /// <summary>
    /// Preallocation, as qemu-img create -o preallocation does it: every guest cluster gets a host
    /// cluster, in guest order, each L2 table before the clusters it maps (so refcount blocks land
    /// where QEMU's land while one refcount block covers the image). Without
    /// <paramref name="writeZeros"/> the data clusters are left to the file's holes ("metadata").
    /// Only clusters from <paramref name="from"/> on are visited (a resize preallocates its new area).
    /// Progress is the percentage of those clusters visited; cancellation stops between clusters,
    /// every cluster done so far mapped and counted.
    /// </summary>
    public void Preallocate(long from, bool writeZeros, IProgress<double>? progress = null, System.Threading.CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            int cs = Layout.ClusterSize;
            long fileEnd = _storage.Length;
            byte[] zeros = new byte[cs];
            long first = from / cs * cs;
            for (long guest = first; guest < Length; guest += cs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report(100.0 * (guest - first) / (Length - first));
                ulong entry = EntryFor(guest, out int l1Index, out _);
                L2Mapping before = Classify(entry, guest);
                if (!before.IsUnallocated && !before.IsZeroPlain)
                {
                    continue;
                }

                Run(RequestFor(guest, l1Index, entry, 0, cs, WriteKind.PreallocateCluster), default);

                // A cluster inside the old file may hold a freed cluster's bytes: it reads zeros
                // only once written, before its mapping can become durable. Past the old end the
                // file's holes read zeros already, unless the space is to be written ("full"). A
                // cluster that keeps its zero flag reads zeros whatever it holds.
                L2Mapping after = Classify(EntryFor(guest, out _, out _), guest);
                ulong host = after.IsZeroAllocated ? after.ZeroHost : after.Host;
                if (writeZeros || ((long)host < fileEnd && !before.IsZeroPlain))
                {
                    _metadata.WriteData(host, zeros);
                }
            }

            // The file reaches the last cluster allocated, not the free-cluster hint: a grown
            // refcount table frees the old one below it, and the hint drops back there.
            FlushMetadata();
            long end = (long)_metadata.FileEnd;
            if (_storage.Length < end)
            {
                _storage.SetLength(end);
            }

            _storage.Flush();
        }
    }

    /// <summary>The planner's request for the one cluster at <paramref name="cluster"/> (a cluster's first guest byte), as the tables map it now.</summary>
    private RunRequest RequestFor(long cluster, int l1Index, ulong entry, int start, int length, WriteKind kind) =>
        new((ulong)cluster, l1Index, _metadata.L1Entry(l1Index), GeometryModule.l2Index(Layout.Geometry, (ulong)cluster), [entry], start, length, kind, 0);

    private PlanContext Context() =>
        new(
            Layout.Geometry,
            Layout.Refcounts,
            Layout.EntryFormat,
            Backing != null,
            Layout.HasRefcounts
                ? AllocationSource.NewRefcounted(_metadata, _metadata.FirstFreeCluster, (_metadata.FileEnd + Limits.MaxPastEndBytes) >> Layout.Geometry.ClusterBits)
                : AllocationSource.NewAppendOnly(_metadata.FileEnd));

    private void GrowRefcountTable()
    {
        PlanOutcome growth = RefcountGrowth.plan(Layout.Refcounts, _metadata, _metadata.RefcountTableOffset, _metadata.RefcountTableClusters);
        if (growth is PlanOutcome.Refused refused)
        {
            throw FormatErrors.ToException(refused.Item, Path);
        }

        _logger.LogRefcountTableGrowth(Path, _metadata.RefcountTableOffset);
        Plan plan = ((PlanOutcome.Planned)growth).Item;
        _executor.Execute(plan, default);
        _metadata.FileEnd = Math.Max(_metadata.FileEnd, plan.NextFreeCluster << Layout.Geometry.ClusterBits);
    }
}
