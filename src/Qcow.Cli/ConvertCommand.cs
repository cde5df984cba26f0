// qcow convert: copies one disk, or several one after another, into an image of any format, as
// qemu-img convert does: block status decides what is read (ranges that read as zeros are not),
// zero detection what is written (-S), -n writes into an existing target, -B leaves what the
// source's backing file holds to the target's backing file. Like qemu-img, the target's cache
// mode is 'unsafe' unless -t says otherwise: no fsync, the page cache decides.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Channels;
using System.Threading.Tasks;
using Qcow.IO;

namespace Qcow.Cli;

/// <param name="TargetReadsZero">The target reads as zeros already: zero ranges need no writing.</param>
/// <param name="TargetHasBacking">Ranges the source's backing file answers are left to the target's backing file.</param>
/// <param name="MinSparse">Zero runs at least this long are not written as data; 0 writes every byte.</param>
/// <param name="Buffers">Chunks in flight between reading and writing.</param>
/// <param name="Compressed">Every cluster that holds data is written compressed (-c).</param>
internal sealed record CopyOptions(bool TargetReadsZero, bool TargetHasBacking, int MinSparse, int Buffers, bool Compressed = false);

internal static class ConvertCommand
{
    private const int ChunkBytes = 2 << 20;

    public static int Run(IReadOnlyList<string> args, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fOotTSmBF", "pqUcnW", [], ["target-is-zero", "force-share"]);
        string cache = opt.Value("t") ?? "unsafe";
        if (cache is not ("unsafe" or "writeback" or "writethrough" or "none" or "directsync"))
        {
            throw new UsageException($"Invalid cache option: {cache}");
        }

        if (opt.Positional.Count < 2)
        {
            throw new UsageException("Expecting at least one source and one target file name");
        }

        if (opt.Value("B") is not null && opt.Value("F") is null && !CreateSpec.ParseOptions(opt.Values("o")).ContainsKey("backing_fmt"))
        {
            throw new ArgumentException("Use of backing file requires explicit backing format");
        }

        if (opt.Has("c") && opt.Value("B") is not null)
        {
            throw new UsageException("-c with -B is not supported by qcow yet");
        }

        if (opt.Has("target-is-zero") && !opt.Has("n"))
        {
            throw new UsageException("--target-is-zero requires use of -n flag");
        }

        long minSparse = opt.Value("S") is { } s ? Sizes.Parse(s) : 4096;
        if (minSparse % 512 != 0 || minSparse > 16 << 20)
        {
            throw new UsageException("Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16MiB");
        }

        int coroutines = opt.Value("m") is { } m && int.TryParse(m, out int n) ? n : 8;
        if (coroutines is < 1 or > 16)
        {
            throw new UsageException("Invalid number of coroutines. Allowed number of coroutines is between 1 and 16");
        }

        string target = opt.Positional[^1];
        var readSettings = VerbOptions.Reading(opt, VerbOptions.WalkingCache);
        var sources = new List<IBlockDevice>();
        try
        {
            for (int i = 0; i < opt.Positional.Count - 1; i++)
            {
                sources.Add(ImageOpener.Open(opt.Positional[i], opt.Value("f"), readSettings));
            }
        }
        catch
        {
            sources.ForEach(d => d.Dispose());
            throw;
        }

        using IBlockDevice input = sources.Count == 1 ? sources[0] : new ConcatenatedDevice(sources);
        string format = opt.Value("O") ?? "raw";
        string? backing = opt.Value("B");
        if (!opt.Has("n"))
        {
            CreateSpec.From(format, CreateSpec.ParseOptions(opt.Values("o")), backing, opt.Value("F"), input.Length).Create(target);
        }

        using IBlockDevice output = ImageOpener.Open(target, format, readSettings with { Writable = true, IgnoreFlushes = cache == "unsafe", ForceShare = false });
        var options = new CopyOptions(
            TargetReadsZero: minSparse != 0 && backing is null && (!opt.Has("n") || opt.Has("target-is-zero")),
            TargetHasBacking: backing is not null,
            MinSparse: (int)minSparse,
            Buffers: Math.Max(2, coroutines / 2),
            Compressed: opt.Has("c"));
        if (options.Compressed && output is not QcowDevice)
        {
            throw new UsageException("Compression not supported for this file format");
        }

        Copy(input, output, options, opt.Has("p") ? new ProgressBar(stderr) : null);
        output.Flush();
        return 0;
    }

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
    public static void Copy(IBlockDevice input, IBlockDevice output, CopyOptions options, IProgress<double>? progress)
    {
        long length = input.Length;
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
                    byte[] buffer = await free.Reader.ReadAsync();
                    int n = (int)Math.Min(ChunkBytes, length - offset);
                    List<Piece> runs = Pieces(input, offset, n, options);
                    foreach (Piece run in runs)
                    {
                        if (run.Kind == RunKind.Data)
                        {
                            input.Read(offset + run.Start, buffer.AsSpan(run.Start, run.Length));
                        }
                        else if (options.Compressed)
                        {
                            // Compressed output is written a whole cluster at a time, zeros and all.
                            buffer.AsSpan(run.Start, run.Length).Clear();
                        }
                    }

                    await filled.Writer.WriteAsync(new Chunk(offset, n, buffer, runs));
                }

                filled.Writer.Complete();
            }
            catch (Exception e)
            {
                filled.Writer.Complete(e);
            }
        });

        try
        {
            while (filled.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            {
                while (filled.Reader.TryRead(out Chunk? chunk))
                {
                    if (options.Compressed)
                    {
                        WriteCompressed((QcowDevice)output, chunk.Offset, chunk.Buffer.AsSpan(0, chunk.Length));
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
                                throw new IOException($"error while writing at byte {chunk.Offset + run.Start}: {SystemErrors.Text(e)}", e);
                            }
                        }
                    }

                    free.Writer.TryWrite(chunk.Buffer);
                    progress?.Report(100.0 * (chunk.Offset + chunk.Length) / length);
                }
            }
        }
        finally
        {
            free.Writer.Complete();
            reader.Wait();
        }

        progress?.Report(100.0);
    }

    /// <summary>A chunk's ranges by block status, neighbours of one kind joined; with -S 0 zeros are data too (a fully allocated target).</summary>
    private static List<Piece> Pieces(IBlockDevice input, long offset, int length, CopyOptions options)
    {
        var runs = new List<Piece>();
        bool sourceHasBacking = input is QcowDevice { Backing: not null };
        for (int done = 0; done < length;)
        {
            BlockStatus s = input.Status(offset + done, length - done);
            // As qemu-img: with -B, what the source's own backing file answers is left to the
            // target's; a source without one reads zeros there, which are written as zeros.
            RunKind kind = options.TargetHasBacking && (s.Depth > 0 || (sourceHasBacking && !s.Present)) ? RunKind.Backing
                : s.Zero && options.MinSparse != 0 ? RunKind.Zero
                : RunKind.Data;
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

    /// <summary>Each cluster of the chunk that is not all zeros, compressed (a new target reads zeros elsewhere).</summary>
    private static void WriteCompressed(QcowDevice output, long offset, ReadOnlySpan<byte> bytes)
    {
        int cs = output.Layout.ClusterSize;
        for (int at = 0; at < bytes.Length; at += cs)
        {
            ReadOnlySpan<byte> cluster = bytes.Slice(at, Math.Min(cs, bytes.Length - at));
            if (!cluster.ContainsAnyExcept((byte)0))
            {
                continue;
            }

            // A source that ends inside a sector leaves the target's last cluster to be padded with zeros.
            int whole = (int)Math.Min(cs, output.Length - (offset + at));
            if (whole > cluster.Length)
            {
                byte[] padded = new byte[whole];
                cluster.CopyTo(padded);
                cluster = padded;
            }

            output.WriteCompressed(offset + at, cluster);
        }
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
