// Writing an overlay's data down into its backing chain, as qemu-img commit does: every run the
// layers above the base allocate is copied into the base (runs that read as zeros are written as
// zeros), the base grown first if it is shorter; then, when the base is the immediate backing
// file and the caller does not keep it, the overlay is emptied (its clusters unmapped, so it
// reads through to the updated base). A crash before the emptying leaves the overlay as it was
// over a base that already holds its data: the same disk.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace Qcow.IO;

internal static class Committer
{
    private const int ChunkBytes = 2 << 20;

    /// <summary>Commits the image at <paramref name="path"/> into <paramref name="baseName"/> (null: its backing file).</summary>
    /// <exception cref="InvalidOperationException">The image has no backing file, or the base is not in its chain; in qemu-img's words.</exception>
    public static void Commit(string path, string format, string? baseName, bool keepTop, OpenSettings settings, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        // The chain is only read, and shared, so that the base can be opened for writing beside it.
        OpenSettings reading = settings with { Writable = false, ForceShare = true, Snapshot = null };
        (string basePath, string baseFormat, long baseLength, int depth, long size, List<(long Offset, long Length, bool Zero)> runs) = Plan(path, format, baseName, reading);
        bool empty = baseName is null && !keepTop;
        ILogger logger = settings.LoggerFactory.CreateLogger("Qcow");
        if (baseLength < size)
        {
            ImageResizer.Resize(basePath, baseFormat, size, false, logger, "off", null, cancellationToken);
        }

        long total = 0;
        runs.ForEach(r => total += r.Length);
        long done = 0;
        using (IBlockDevice top = ImageOpener.Open(path, format, reading))
        using (IBlockDevice target = ImageOpener.Open(basePath, baseFormat, settings with { Writable = true, ForceShare = false, Snapshot = null }))
        {
            byte[] buffer = new byte[ChunkBytes];
            foreach ((long offset, long length, bool zero) in runs)
            {
                for (long at = offset; at < offset + length;)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    int n = (int)Math.Min(ChunkBytes, offset + length - at);
                    if (zero)
                    {
                        // As QEMU's commit job: zeros may free what the base held there.
                        target.WriteZeroes(at, n, mayUnmap: true);
                    }
                    else
                    {
                        // These bytes are allocated above the base, so reading them never reaches it.
                        top.Read(at, buffer.AsSpan(0, n));
                        target.Write(at, buffer.AsSpan(0, n));
                    }

                    at += n;
                    done += n;
                    progress?.Report(total == 0 ? 100 : 100.0 * done / total);
                }
            }

            target.Flush();
        }

        if (empty)
        {
            Empty(path, format, settings);
        }

        logger.LogInformation("{Image}: committed into {Base} (depth {Depth})", path, basePath, depth);
        progress?.Report(100);
    }

    /// <summary>
    /// The base (path, format, length, depth in the chain), the disk's size, and the runs the
    /// layers above the base allocate, each marked when it reads as zeros.
    /// </summary>
    private static (string, string, long, int, long, List<(long, long, bool)>) Plan(string path, string format, string? baseName, OpenSettings reading)
    {
        using IBlockDevice top = ImageOpener.Open(path, format, reading);
        var chain = new List<IBlockDevice>();
        for (IBlockDevice? layer = (top as QcowDevice)?.Backing; layer != null; layer = (layer as QcowDevice)?.Backing)
        {
            chain.Add(layer);
        }

        if (chain.Count == 0)
        {
            throw new InvalidOperationException("Image does not have a backing file");
        }

        int index = baseName is null ? 0 : chain.FindIndex(layer => Names(path, baseName, layer.Path));
        if (index < 0)
        {
            throw new InvalidOperationException($"Did not find '{baseName}' in the backing chain of '{path}'");
        }

        IBlockDevice target = chain[index];
        int depth = index + 1;
        var runs = new List<(long, long, bool)>();
        for (long offset = 0; offset < top.Length;)
        {
            BlockStatus s = top.Status(offset, top.Length - offset);
            if (s.Present && s.Depth < depth)
            {
                if (runs.Count > 0 && runs[^1] is var (o, l, z) && o + l == offset && z == s.Zero)
                {
                    runs[^1] = (o, l + s.Length, z);
                }
                else
                {
                    runs.Add((offset, s.Length, s.Zero));
                }
            }

            offset += s.Length;
        }

        return (target.Path, target.FormatName, target.Length, depth, top.Length, runs);
    }

    /// <summary>Whether the user's name for the base names this layer: as a path from here, or as the image's own directory resolves it.</summary>
    private static bool Names(string image, string name, string layer) =>
        Path.GetFullPath(name) == Path.GetFullPath(layer) || Path.GetFullPath(ImageOpener.ResolveBacking(image, name)) == Path.GetFullPath(layer);

    /// <summary>Unmaps every cluster the overlay itself allocates, as QEMU's make_empty does, so it reads through to its backing file.</summary>
    private static void Empty(string path, string format, OpenSettings settings)
    {
        using IBlockDevice device = ImageOpener.Open(path, format, settings with { Writable = true, ForceShare = false, OpenBackingFiles = false, Snapshot = null });
        var qcow = (QcowDevice)device;
        for (long offset = 0; offset < device.Length;)
        {
            BlockStatus s = device.Status(offset, device.Length - offset);
            if (s.Present && s.Depth == 0)
            {
                qcow.Drop(offset, s.Length);
            }

            offset += s.Length;
        }

        device.Flush();
    }
}
