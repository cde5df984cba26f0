// Copying one disk into another as qemu-img convert does: block status decides what is read
// (ranges that read as zeros are not), zero detection what is written (MinSparse), and with a
// backing file on the target, what the source's backing file holds is left to it.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace Qcow.IO;

/// <param name="TargetReadsZero">The target reads as zeros already: zero ranges need no writing.</param>
/// <param name="TargetHasBacking">Ranges the source's backing file answers are left to the target's backing file.</param>
/// <param name="MinSparse">Zero runs at least this long are not written as data; 0 writes every byte.</param>
/// <param name="Buffers">Chunks in flight between reading and writing.</param>
/// <param name="Compressed">Every cluster that holds data is written compressed.</param>
internal sealed record CopyOptions(bool TargetReadsZero, bool TargetHasBacking, int MinSparse, int Buffers, bool Compressed = false);

internal static class ImageCopier
{
    private const int ChunkBytes = 2 << 20;

    /// <summary>What a range of the source asks of the target.</summary>
    private enum RunKind
    {
        Data,
        Zero,
        Backing,
    }

    private readonly record struct Piece(int Start, int Length, RunKind Kind);

    private sealed record Chunk(long Offset, int Length, byte[] Buffer, List<Piece> Pieces);

    /// <summary>
    /// Copies the source chunk by chunk: a reader thread reads the data ranges of the next chunks
    /// while this one is written (a small pool of buffers between two threads), as qemu-img
    /// overlaps its requests.
    /// </summary>
    public static void Copy(IBlockDevice input, IBlockDevice output, CopyOptions options, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        long length = input.Length;
        WorkProgress? work = progress is null ? null : WorkProgress.Of(input, options, options.Compressed ? ((QcowDevice)output).Layout.ClusterSize : ChunkBytes);
        progress?.Report(0);
        var filled = Channel.CreateBounded<Chunk>(options.Buffers - 1);
        var free = Channel.CreateUnbounded<byte[]>();
        for (int i = 0; i < options.Buffers; i++)
        {
            free.Writer.TryWrite(new byte[ChunkBytes]);
        }

        Task reader = Task.Run(async () =>
        {
            try
            {
                for (long offset = 0; offset < length; offset += ChunkBytes)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    byte[] buffer = await free.Reader.ReadAsync(cancellationToken);
                    int n = (int)Math.Min(ChunkBytes, length - offset);
                    List<Piece> runs = Pieces(input, offset, n, options);
                    foreach (Piece run in runs)
                    {
                        // Compressed output is written a whole cluster at a time: a cluster only
                        // partly left to the backing file holds the backing file's bytes too.
                        if (run.Kind == RunKind.Data || (options.Compressed && run.Kind == RunKind.Backing))
                        {
                            input.Read(offset + run.Start, buffer.AsSpan(run.Start, run.Length));
                        }
                        else if (options.Compressed)
                        {
                            buffer.AsSpan(run.Start, run.Length).Clear();
                        }
                    }

                    await filled.Writer.WriteAsync(new Chunk(offset, n, buffer, runs), cancellationToken);
                }

                filled.Writer.TryComplete();
            }
            catch (Exception e)
            {
                filled.Writer.TryComplete(e);
            }
        });

        try
        {
            while (filled.Reader.WaitToReadAsync(cancellationToken).AsTask().GetAwaiter().GetResult())
            {
                while (filled.Reader.TryRead(out Chunk? chunk))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (options.Compressed)
                    {
                        WriteCompressed((QcowDevice)output, chunk, options);
                    }
                    else
                    {
                        foreach (Piece run in chunk.Pieces)
                        {
                            try
                            {
                                WriteRun(output, chunk.Offset + run.Start, chunk.Buffer.AsSpan(run.Start, run.Length), run.Kind, options);
                            }
                            catch (IOException e)
                            {
                                throw new IOException($"error while writing at byte {chunk.Offset + run.Start}: {e.Message}", e);
                            }
                        }
                    }

                    free.Writer.TryWrite(chunk.Buffer);
                    work?.ReportThrough(chunk.Offset + chunk.Length, progress!);
                }
            }
        }
        finally
        {
            // A reader waiting for a free buffer or for room to pass a chunk on is woken by its
            // channel closing, so that a failed or cancelled copy stops both threads.
            filled.Writer.TryComplete();
            free.Writer.Complete();
            reader.Wait(CancellationToken.None);
        }

        progress?.Report(100.0);
    }

    /// <summary>
    /// The figures qemu-img's progress shows. Before copying it adds up the work (the ranges it
    /// will write as data), then counts that work in pieces of at most one buffer, each run of
    /// block status cut from its own start; the figures are those pieces' running totals. This
    /// copy's chunks are cut differently, so the pieces are kept and reported as the copy passes them.
    /// </summary>
    private sealed class WorkProgress
    {
        /// <summary>The most one block-status query covers (QEMU's largest request, 2 GiB less a sector).</summary>
        private const long LargestQuery = int.MaxValue & ~511L;

        private readonly List<(long Start, long DoneAfter)> _pieces = [];
        private long _total;
        private int _next;

        public static WorkProgress Of(IBlockDevice input, CopyOptions options, int pieceBytes)
        {
            var work = new WorkProgress();
            for (long at = 0; at < input.Length;)
            {
                BlockStatus s = input.Status(at, Math.Min(input.Length - at, LargestQuery));
                if (KindOf(input, s, options) == RunKind.Data)
                {
                    for (long piece = 0; piece < s.Length; piece += pieceBytes)
                    {
                        work._total += Math.Min(pieceBytes, s.Length - piece);
                        work._pieces.Add((at + piece, work._total));
                    }
                }

                at += s.Length;
            }

            return work;
        }

        /// <summary>Reports each piece that starts before <paramref name="end"/> and was not reported yet.</summary>
        public void ReportThrough(long end, IProgress<double> progress)
        {
            for (; _next < _pieces.Count && _pieces[_next].Start < end; _next++)
            {
                progress.Report(100.0 * _pieces[_next].DoneAfter / _total);
            }
        }
    }

    /// <summary>A chunk's ranges by block status, neighbours of one kind joined.</summary>
    private static List<Piece> Pieces(IBlockDevice input, long offset, int length, CopyOptions options)
    {
        var runs = new List<Piece>();
        for (int done = 0; done < length;)
        {
            BlockStatus s = input.Status(offset + done, length - done);
            RunKind kind = KindOf(input, s, options);
            int n = (int)s.Length;
            if (runs.Count > 0 && runs[^1].Kind == kind)
            {
                runs[^1] = runs[^1] with { Length = runs[^1].Length + n };
            }
            else
            {
                runs.Add(new Piece(done, n, kind));
            }

            done += n;
        }

        return runs;
    }

    /// <summary>
    /// What a run asks of the target. As qemu-img: with -B, what the source's own backing file
    /// answers is left to the target's; a source without one reads zeros there, which are written
    /// as zeros; with -S 0 zeros are data too (a fully allocated target).
    /// </summary>
    private static RunKind KindOf(IBlockDevice input, BlockStatus s, CopyOptions options) =>
        options.TargetHasBacking && (s.Depth > 0 || (input is QcowDevice { Backing: not null } && !s.Present)) ? RunKind.Backing
        : s.Zero && options.MinSparse != 0 ? RunKind.Zero
        : RunKind.Data;

    /// <summary>
    /// Each cluster of the chunk compressed, as qemu-img convert -c writes them: a cluster wholly
    /// left to the target's backing file is skipped; an all-zero one is skipped where the target
    /// reads zeros already, written as zeros where it may not, and compressed like any other with -S 0.
    /// </summary>
    private static void WriteCompressed(QcowDevice output, Chunk chunk, CopyOptions options)
    {
        int cs = output.Layout.ClusterSize;
        for (int at = 0; at < chunk.Length; at += cs)
        {
            ReadOnlySpan<byte> cluster = chunk.Buffer.AsSpan(at, Math.Min(cs, chunk.Length - at));
            long offset = chunk.Offset + at;
            if (options.TargetHasBacking && LeftToBacking(chunk.Pieces, at, cluster.Length))
            {
                continue;
            }

            if (options.MinSparse != 0 && !cluster.ContainsAnyExcept((byte)0))
            {
                if (!options.TargetReadsZero)
                {
                    output.WriteZeroes(offset, cluster.Length);
                }

                continue;
            }

            // A source that ends inside a sector leaves the target's last cluster to be padded with zeros.
            int whole = (int)Math.Min(cs, output.Length - offset);
            if (whole > cluster.Length)
            {
                byte[] padded = new byte[whole];
                cluster.CopyTo(padded);
                cluster = padded;
            }

            output.WriteCompressed(offset, cluster);
        }
    }

    /// <summary>Whether the chunk's pieces leave all of [start, start + length) to the backing file.</summary>
    private static bool LeftToBacking(List<Piece> pieces, int start, int length)
    {
        foreach (Piece p in pieces)
        {
            if (p.Start < start + length && p.Start + p.Length > start && p.Kind != RunKind.Backing)
            {
                return false;
            }
        }

        return true;
    }

    private static void WriteRun(IBlockDevice output, long offset, ReadOnlySpan<byte> bytes, RunKind kind, CopyOptions options)
    {
        switch (kind)
        {
            case RunKind.Data when options.MinSparse == 0:
                output.Write(offset, bytes);
                break;
            case RunKind.Data:
                WriteDetectingZeros(output, offset, bytes, options);
                break;
            case RunKind.Zero when !options.TargetReadsZero:
                output.WriteZeroes(offset, bytes.Length);
                break;
        }
    }

    /// <summary>Writes the granules that hold data; all-zero granules are skipped, or written as zeros when the target may hold something else.</summary>
    private static void WriteDetectingZeros(IBlockDevice output, long offset, ReadOnlySpan<byte> bytes, CopyOptions options)
    {
        int granule = options.MinSparse;
        int start = 0;
        bool? startIsData = null;
        for (int at = 0; ; at += granule)
        {
            // Past the last granule, data is null: whatever run is open gets written.
            bool? data = at < bytes.Length ? bytes.Slice(at, Math.Min(granule, bytes.Length - at)).ContainsAnyExcept((byte)0) : null;
            if (data != startIsData)
            {
                int end = Math.Min(at, bytes.Length);
                if (startIsData == true)
                {
                    output.Write(offset + start, bytes[start..end]);
                }
                else if (startIsData == false && !options.TargetReadsZero)
                {
                    output.WriteZeroes(offset + start, end - start);
                }

                start = at;
                startIsData = data;
            }

            if (data is null)
            {
                return;
            }
        }
    }
}
