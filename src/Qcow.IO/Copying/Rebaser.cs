// Changing the backing file of a closed qcow2 image, as qemu-img rebase does. Safe mode first
// copies into the image every run it does not allocate itself where the old backing chain and the
// new one read differently (compared 512 bytes at a time, as qemu-img compares them), so the
// guest sees the same disk afterwards; then, in both modes, the header names the new backing file
// and its format (or none). A crash between the two leaves the old backing file named and the
// copied data in the image: the same disk.
using System;
using System.Threading;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

internal static class Rebaser
{
    /// <summary>qemu-img rebase's buffer: the copy reads and compares this much at a time.</summary>
    private const int ChunkBytes = 2 << 20;

    private const int SectorBytes = 512;

    /// <summary>Rebases the image at <paramref name="path"/> onto <paramref name="backing"/> (null: none).</summary>
    /// <exception cref="InvalidOperationException">A backing file without its format, as QEMU refuses it; or the new backing file cannot be opened.</exception>
    public static void Rebase(string path, string? format, string? backing, string? backingFormat, bool safe, OpenSettings settings, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        if (backing is not null && backingFormat is null)
        {
            throw new InvalidOperationException($"Could not change the backing file to '{backing}': backing format must be specified");
        }

        if (safe)
        {
            CopyDifferences(path, format, backing, backingFormat, settings, progress, cancellationToken);
        }

        using FileStorage storage = FileStorage.Open(path, writable: true);
        Header header = QcowDevice.PrepareForWriting(storage, new DeviceOptions(true, false, 0, settings.LoggerFactory.CreateLogger("Qcow")));
        Header rebased = HeaderModule.withBacking(header, Microsoft.FSharp.Core.OptionModule.OfObj(backing), Microsoft.FSharp.Core.OptionModule.OfObj(backingFormat));
        byte[] first = HeaderEncode.encode(rebased).OrThrow(path);
        storage.Write(0, first);
        storage.Flush();
        progress?.Report(100);
    }

    private static void CopyDifferences(string path, string? format, string? backing, string? backingFormat, OpenSettings settings, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        using IBlockDevice image = ImageOpener.Open(path, format, settings with { Writable = true, ForceShare = false });
        using IBlockDevice? newBase = backing is null ? null : OpenNewBacking(path, backing, backingFormat!, settings);
        byte[] old = new byte[ChunkBytes];
        byte[] next = new byte[ChunkBytes];
        long size = image.Length;
        long oldBackingSize = (image as QcowDevice)?.Backing?.Length ?? 0;
        for (long offset = 0; offset < size;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            BlockStatus status = image.Status(offset, Math.Min(ChunkBytes, size - offset));
            int n = (int)status.Length;
            if (!(status.Depth == 0 && status.Present))
            {
                // Unallocated here: the image reads as its old backing chain.
                image.Read(offset, old.AsSpan(0, n));
                ReadNew(newBase, offset, next.AsSpan(0, n));
                WriteDifferences(image, offset, old.AsSpan(0, n), next.AsSpan(0, n), zeros: offset >= oldBackingSize);
            }

            offset += n;
            progress?.Report(100.0 * offset / size);
        }

        image.Flush();
    }

    private static IBlockDevice OpenNewBacking(string path, string backing, string backingFormat, OpenSettings settings)
    {
        try
        {
            return ImageOpener.Open(ImageOpener.ResolveBacking(path, backing), backingFormat, settings with { Writable = false, Snapshot = null });
        }
        catch (Exception e) when (e is System.IO.IOException or UnauthorizedAccessException or QcowFormatException or ArgumentException)
        {
            throw new InvalidOperationException($"Could not open new backing file '{backing}': {e.Message}", e);
        }
    }

    /// <summary>The new chain's bytes: zeros past its end, or everywhere when there is none.</summary>
    private static void ReadNew(IBlockDevice? newBase, long offset, Span<byte> buffer)
    {
        buffer.Clear();
        if (newBase is not null && offset < newBase.Length)
        {
            newBase.Read(offset, buffer[..(int)Math.Min(buffer.Length, newBase.Length - offset)]);
        }
    }

    /// <summary>
    /// Writes the old chain's bytes over each run of sectors where the two chains differ; past the
    /// end of the old backing file (<paramref name="zeros"/>: they read as zeros there), as a zero
    /// write, as qemu-img writes them.
    /// </summary>
    private static void WriteDifferences(IBlockDevice image, long offset, ReadOnlySpan<byte> old, ReadOnlySpan<byte> next, bool zeros)
    {
        int at = 0;
        while (at < old.Length)
        {
            bool differs = !Sector(old, at).SequenceEqual(Sector(next, at));
            int end = at;
            while (end < old.Length && !Sector(old, end).SequenceEqual(Sector(next, end)) == differs)
            {
                end += Sector(old, end).Length;
            }

            if (differs && zeros)
            {
                image.WriteZeroes(offset + at, end - at);
            }
            else if (differs)
            {
                image.Write(offset + at, old[at..end]);
            }

            at = end;
        }
    }

    private static ReadOnlySpan<byte> Sector(ReadOnlySpan<byte> buffer, int at) => buffer.Slice(at, Math.Min(SectorBytes, buffer.Length - at));
}
