// qcow convert: copies a disk into a new image of any format, skipping ranges that read as zeros
// (a new target reads as zeros already), with qemu-img's progress display on -p.
using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.IO;

namespace Qcow.Cli;

internal static class ConvertCommand
{
    private const int ChunkBytes = 2 << 20;

    public static int Run(IReadOnlyList<string> args, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fOo", "pqU");
        if (opt.Positional.Count != 2)
        {
            throw new UsageException("Expecting one source and one target file name");
        }

        string source = opt.Positional[0];
        string target = opt.Positional[1];
        var readSettings = new OpenSettings(false, false, 32 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default);
        using IBlockDevice input = ImageOpener.Open(source, opt.Value("f"), readSettings);
        string format = opt.Value("O") ?? "raw";
        CreateSpec spec = CreateSpec.From(format, CreateSpec.ParseOptions(opt.Values("o")), null, null, input.Length);
        spec.Create(target);
        using IBlockDevice output = ImageOpener.Open(target, format, readSettings with { Writable = true });
        var progress = opt.Has("p") ? new ProgressBar(stderr) : null;
        Copy(input, output, progress);
        output.Flush();
        return 0;
    }

    /// <summary>Copies every chunk that is not all zeros; the target reads as zeros elsewhere.</summary>
    public static void Copy(IBlockDevice input, IBlockDevice output, IProgress<double>? progress)
    {
        byte[] buffer = new byte[ChunkBytes];
        long length = input.Length;
        for (long offset = 0; offset < length; offset += ChunkBytes)
        {
            int n = (int)Math.Min(ChunkBytes, length - offset);
            input.Read(offset, buffer.AsSpan(0, n));
            WriteNonZeroRuns(output, offset, buffer.AsSpan(0, n));
            progress?.Report(100.0 * (offset + n) / length);
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
