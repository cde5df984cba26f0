// Free clusters for a change written beside what the image holds now.
using System;
using System.Collections.Generic;
using Qcow.Format;

namespace Qcow.IO;

/// <summary>
/// Clusters free for a change made beside the image's current state (a new metadata
/// generation, zero expansion): those the current counts leave at 0, less those taken since.
/// Taken clusters are found first-fit from where the last ones ended.
/// </summary>
internal sealed class FreeClusters(uint[] counts)
{
    private readonly HashSet<ulong> _taken = [];
    private ulong _cursor = 1;

    /// <summary>One past the last cluster anything lies in.</summary>
    public ulong End { get; private set; } = (ulong)counts.Length;

    public bool IsBusy(ulong cluster) => (cluster < (ulong)counts.Length && counts[cluster] != 0) || _taken.Contains(cluster);

    public ulong Take(ulong clusters)
    {
        ulong first = Generation.freeRun(Microsoft.FSharp.Core.FuncConvert.FromFunc<ulong, bool>(IsBusy), clusters, _cursor);
        for (ulong c = first; c < first + clusters; c++)
        {
            _taken.Add(c);
        }

        _cursor = first + clusters;
        End = Math.Max(End, _cursor);
        return first;
    }
}
