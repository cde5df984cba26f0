// Reading guest bytes: one table lookup and one positional read per run of host-contiguous
// clusters; zeros, compressed clusters and the backing file otherwise. No plan, no allocation.
// The lock covers the lookup only (as QEMU's covers qcow2_get_host_offset): the data pread and
// the backing file's read run outside it, so reads from several threads overlap.
using System;
using System.Threading;
using System.Threading.Tasks;
using Qcow.Format;

namespace Qcow.IO;

internal sealed partial class QcowDevice
{
    public void Read(long offset, Span<byte> destination)
    {
        while (destination.Length > 0)
        {
            if (offset >= Length)
            {
                destination.Clear();
                return;
            }

            int n = ReadRun(offset, destination[..(int)Math.Min(destination.Length, Length - offset)]);
            offset += n;
            destination = destination[n..];
        }
    }

    /// <summary>What a run's bytes come from once the lock is released.</summary>
    private enum RunSource
    {
        /// <summary>Copied already, under the lock (zeros, an inflated compressed cluster).</summary>
        Done,
        /// <summary>The data file at the host offset.</summary>
        Host,
        /// <summary>The backing file at the guest offset.</summary>
        Backing,
    }

    /// <summary>
    /// Reads as <see cref="Read"/> does; the data and backing-file reads are asynchronous file
    /// reads, so many can be in flight at once.
    /// </summary>
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (destination.Length > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (offset >= Length)
            {
                destination.Span.Clear();
                return;
            }

            Memory<byte> part = destination[..(int)Math.Min(destination.Length, Length - offset)];
            RunSource source = BeginRun(offset, part.Span, out ulong host, out int n, out int ticket);
            if (source == RunSource.Host)
            {
                try
                {
                    DataStorage.Announce(QcowDriverEvent.ReadAio);
                    int read = await DataStorage.ReadAsync((long)host, part[..n], cancellationToken).ConfigureAwait(false);
                    part.Span[read..n].Clear();
                }
                finally
                {
                    _ioInFlight.Exit(ticket);
                }
            }
            else if (source == RunSource.Backing)
            {
                await Backing!.ReadAsync(offset, part[..n], cancellationToken).ConfigureAwait(false);
            }

            offset += n;
            destination = destination[n..];
        }
    }

    /// <summary>Reads from one cluster, or a run of clusters stored contiguously; returns bytes read.</summary>
    private int ReadRun(long offset, Span<byte> destination)
    {
        switch (BeginRun(offset, destination, out ulong host, out int n, out int ticket))
        {
            case RunSource.Host:
                try
                {
                    DataStorage.Announce(QcowDriverEvent.ReadAio);
                    destination[DataStorage.Read((long)host, destination[..n])..n].Clear();
                }
                finally
                {
                    _ioInFlight.Exit(ticket);
                }

                break;
            case RunSource.Backing:
                Backing!.Read(offset, destination[..n]);
                break;
        }

        return n;
    }

    /// <summary>
    /// The lookup, under the lock: the run at <paramref name="offset"/>, its length, and where its
    /// bytes come from (zeros and compressed clusters are copied here). A read of the data file
    /// is counted in flight (<paramref name="ticket"/>) before the lock is released; the caller
    /// counts it out.
    /// </summary>
    private RunSource BeginRun(long offset, Span<byte> destination, out ulong host, out int n, out int ticket)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            ThrowIfEncrypted();
            RunSource source = LookUpRun(offset, destination, out host, out n);
            ticket = source == RunSource.Host ? _ioInFlight.Enter() : 0;
            return source;
        }
    }

    private RunSource LookUpRun(long offset, Span<byte> destination, out ulong host, out int n)
    {
        host = 0;
        int clusterSize = Layout.ClusterSize;
        int inCluster = (int)(offset & (clusterSize - 1));
        L2Mapping mapping = MappingAt(offset, out int run);
        n = Math.Min(destination.Length, run);
        switch (mapping.Tag)
        {
            case L2Mapping.Tags.Normal:
                host = mapping.Host + (ulong)inCluster;
                while (!Layout.ExtendedL2 && n < destination.Length && NextIsContiguous(offset + n, host + (ulong)n))
                {
                    n += Math.Min(destination.Length - n, clusterSize);
                }

                return RunSource.Host;
            case L2Mapping.Tags.Compressed:
                if (_inflatedHost != mapping.StreamHost)
                {
                    _inflatedHost = ulong.MaxValue;
                    _codec.Inflate(mapping.StreamHost, mapping.StreamLength, _inflated);
                    _inflatedHost = mapping.StreamHost;
                }

                _inflated.AsSpan(inCluster, n).CopyTo(destination);
                return RunSource.Done;
            case L2Mapping.Tags.Unallocated when Backing is not null:
                return RunSource.Backing;
            default:
                destination[..n].Clear();
                return RunSource.Done;
        }
    }

    private bool NextIsContiguous(long guest, ulong host)
    {
        if (guest >= Length)
        {
            return false;
        }

        L2Mapping next = Classify(EntryFor(guest, out _, out _), guest);
        return next.IsNormal && next.Host == host;
    }
}
