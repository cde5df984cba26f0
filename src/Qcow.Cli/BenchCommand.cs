// qcow bench: qemu-img bench's requests (count, size, depth, start offset, step, reads or writes,
// flushes every N), timed, and their rate.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace Qcow.Cli;

internal static class BenchCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "cdfiostS", "nqwU", ["flush-interval", "pattern"], ["no-drain", "force-share", "image-opts"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        long count = Number(opt, "c", 75000);
        int depth = (int)Number(opt, "d", 64);
        long size = opt.Value("s") is { } s ? Sizes.Parse(s) : 4096;
        long step = opt.Value("S") is { } st ? Sizes.Parse(st) : size;
        long start = opt.Value("o") is { } o ? Sizes.Parse(o) : 0;
        long flushInterval = Number(opt, "flush-interval", 0);
        bool write = opt.Has("w");
        byte pattern = (byte)Number(opt, "pattern", 0);
        if (count < 1 || depth < 1 || size < 1 || size > int.MaxValue)
        {
            throw new UsageException("Invalid request count, queue depth or buffer size");
        }

        if (flushInterval != 0 && flushInterval < depth)
        {
            throw new UsageException("Flush interval can't be smaller than depth");
        }

        string cache = opt.Value("t") ?? "writeback";
        string path = opt.Positional[0];
        using QcowImage device = VerbOptions.Open(path, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.WalkingCache) with { ReadOnly = !write, IgnoreFlushes = cache == "unsafe" }, imageOpts: opt.Has("image-opts"));
        if (device.Length < size)
        {
            throw new UsageException("Image size must be larger than the buffer size");
        }

        TextWriter say = opt.Has("q") ? TextWriter.Null : stdout;
        say.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Sending {count} {(write ? "write" : "read")} requests, {size} bytes each, {depth} in parallel (starting at offset {start}, step size {step})"));
        long next = -1;
        var watch = Stopwatch.StartNew();
        Parallel.For(0, depth, new ParallelOptions { MaxDegreeOfParallelism = depth }, _ =>
        {
            byte[] buffer = new byte[size];
            buffer.AsSpan().Fill(pattern);
            for (long i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                // Request i goes step × i bytes further on, wrapping at the end of the image, as in qemu-img.
                long offset = (start + (i * step)) % device.Length;
                offset = Math.Min(offset, device.Length - size);
                if (write)
                {
                    device.Write(offset, buffer);
                }
                else
                {
                    device.Read(offset, buffer);
                }

                if (flushInterval != 0 && (i + 1) % flushInterval == 0)
                {
                    device.Flush();
                }
            }
        });
        if (write)
        {
            device.Flush();
        }

        double seconds = watch.Elapsed.TotalSeconds;
        say.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Run completed in {seconds:0.000} seconds."));
        say.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count / Math.Max(seconds, 1e-9):0} requests per second"));
        return 0;
    }

    private static long Number(GetOpt opt, string name, long fallback) =>
        opt.Value(name) is not { } text ? fallback
        : long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) ? n
        : throw new UsageException($"Invalid {name} value '{text}'");
}
