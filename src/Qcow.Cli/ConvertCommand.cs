// qcow convert: copies a disk into a new image of any format, skipping ranges that read as zeros
// (a new target reads as zeros already), with qemu-img's progress display on -p. Like qemu-img,
// the target's cache mode is 'unsafe' unless -t says otherwise: no fsync, the page cache decides.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Channels;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.IO;

namespace Qcow.Cli;

internal static class ConvertCommand
{
    private const int ChunkBytes = 2 << 20;
    private const int Buffers = 4;

    public static int Run(IReadOnlyList<string> args, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fOotT", "pqU");
        string cache = opt.Value("t") ?? "unsafe";
        if (cache is not ("unsafe" or "writeback" or "writethrough" or "none" or "directsync"))
        {
            throw new UsageException($"Invalid cache option: {cache}");
        }

        if (opt.Positional.Count != 2)
        {
            throw new UsageException("Expecting one source and one target file name");
        }

        string source = opt.Positional[0];
        string target = opt.Positional[1];
        var readSettings = new OpenSettings(false, false, 32 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, ForceShare: opt.Has("U"));
        using IBlockDevice input = ImageOpener.Open(source, opt.Value("f"), readSettings);
        string format = opt.Value("O") ?? "raw";
        CreateSpec spec = CreateSpec.From(format, CreateSpec.ParseOptions(opt.Values("o")), null, null, input.Length);
        spec.Create(target);
        using IBlockDevice output = ImageOpener.Open(target, format, readSettings with { Writable = true, IgnoreFlushes = cache == "unsafe", ForceShare = false });
        var progress = opt.Has("p") ? new ProgressBar(stderr) : null;
        Copy(input, output, progress);
        output.Flush();
        return 0;
    }

    /// <summary>
    /// Copies every chunk that is not all zeros; the target reads as zeros elsewhere. Reading the
    /// next chunks overlaps writing this one (a small pool of buffers between two threads), as
    /// qemu-img overlaps its requests.
    /// </summary>
    public static void Copy(IBlockDevice input, IBlockDevice output, IProgress<double>? progress)
    {
        long length = input.Length;
        var filled = Channel.CreateBounded<(long Offset, int Length, byte[] Buffer)>(Buffers - 1);
        var free = Channel.CreateUnbounded<byte[]>();
        for (int i = 0; i < Buffers; i++)
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
                    input.Read(offset, buffer.AsSpan(0, n));
                    await filled.Writer.WriteAsync((offset, n, buffer));
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
                while (filled.Reader.TryRead(out var chunk))
                {
                    WriteNonZeroRuns(output, chunk.Offset, chunk.Buffer.AsSpan(0, chunk.Length));
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

    /// <summary>Writes the parts of a chunk that hold data, in 64 KiB granules.</summary>
    private static void WriteNonZeroRuns(IBlockDevice output, long offset, ReadOnlySpan<byte> chunk)
    {
        const int Granule = 64 << 10;
        int start = -1;
        for (int at = 0; at <= chunk.Length; at += Granule)
        {
            bool data = at < chunk.Length && chunk.Slice(at, Math.Min(Granule, chunk.Length - at)).ContainsAnyExcept((byte)0);
            if (data && start < 0)
            {
                start = at;
            }
            else if (!data && start >= 0)
            {
                output.Write(offset + start, chunk[start..Math.Min(at, chunk.Length)]);
                start = -1;
            }
        }
    }
}
