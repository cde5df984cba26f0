// An image file's host clusters by role: what qcow layout draws.
using System.Collections.Generic;
using Qcow.IO;

namespace Qcow;

/// <summary>What each host cluster of a qcow2 image file holds, found by walking its tables.</summary>
public sealed class QcowClusterMap
{
    private QcowClusterMap()
    {
    }

    /// <summary>The image file's path.</summary>
    public string Path { get; private init; } = "";

    /// <summary>Host cluster size in bytes.</summary>
    public int ClusterSize { get; private init; }

    /// <summary>The role of each host cluster, from the start of the file.</summary>
    public IReadOnlyList<QcowClusterRole> Roles { get; private init; } = [];

    /// <summary>Maps the clusters of a qcow2 image file without opening it as a disk (nothing is checked or repaired).</summary>
    /// <param name="path">The image file.</param>
    /// <param name="forceShare">Read it even while another process writes it (qemu-img's -U).</param>
    /// <exception cref="System.NotSupportedException">The file is not a qcow2 image.</exception>
    /// <exception cref="QcowFormatException">The header or tables cannot be read.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read.</exception>
    public static QcowClusterMap Of(string path, bool forceShare = false)
    {
        using FileStorage storage = FileStorage.Open(path, writable: false, shareAll: forceShare);
        if (ImageOpener.Probe(storage) != "qcow2")
        {
            throw new System.NotSupportedException($"{path}: layout draws qcow2 images only");
        }

        ClusterRoles roles = ClusterRoles.Of(storage, QcowDevice.ReadHeader(storage));
        return new QcowClusterMap { Path = path, ClusterSize = 1 << roles.ClusterBits, Roles = roles.Roles };
    }
}
