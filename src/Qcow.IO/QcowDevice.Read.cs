// Reading guest bytes: one table lookup and one positional read per run of host-contiguous
// clusters; zeros, compressed clusters and the backing file otherwise. No plan, no allocation.
using System;
using Qcow.Format;

namespace Qcow.IO;

internal sealed partial class QcowDevice
{
    public void Read(long offset, Span<byte> destination)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            ThrowIfEncrypted();
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
    }

    /// <summary>Reads from one cluster, or a run of clusters stored contiguously; returns bytes read.</summary>
    private int ReadRun(long offset, Span<byte> destination)
    {
        int clusterSize = Layout.ClusterSize;
        int inCluster = (int)(offset & (clusterSize - 1));
        L2Mapping mapping = MappingAt(offset, out int run);
        int n = Math.Min(destination.Length, run);
        switch (mapping.Tag)
        {
            case L2Mapping.Tags.Normal:
                ulong host = mapping.Host + (ulong)inCluster;
                while (!Layout.ExtendedL2 && n < destination.Length && NextIsContiguous(offset + n, host + (ulong)n))
                {
                    n += Math.Min(destination.Length - n, clusterSize);
                }

                destination[DataStorage.Read((long)host, destination[..n])..n].Clear();
                return n;
            case L2Mapping.Tags.Compressed:
                if (_inflatedHost != mapping.StreamHost)
                {
                    _inflatedHost = ulong.MaxValue;
                    _codec.Inflate(mapping.StreamHost, mapping.StreamLength, _inflated);
                    _inflatedHost = mapping.StreamHost;
                }

                _inflated.AsSpan(inCluster, n).CopyTo(destination);
                return n;
            case L2Mapping.Tags.Unallocated:
                if (Backing is null)
                {
                    destination[..n].Clear();
                }
                else
                {
                    Backing.Read(offset, destination[..n]);
                }

                return n;
            default:
                destination[..n].Clear();
                return n;
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
