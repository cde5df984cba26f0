// qcow convert: qemu-img convert's arguments, over QcowImage.Convert. Like qemu-img, the target's
// cache mode is 'unsafe' unless -t says otherwise: no fsync, the page cache decides.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal static class ConvertCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fOotTSmBFls", "pqUcnW", [], ["target-is-zero", "force-share", "image-opts", "bitmaps", "skip-broken-bitmaps"]);
        string cache = opt.Value("t") ?? "unsafe";
        if (cache is not ("unsafe" or "writeback" or "writethrough" or "none" or "directsync"))
        {
            throw new UsageException($"Invalid cache option: {cache}");
        }

        if (opt.Positional.Count < 2)
        {
            throw new UsageException("Expecting at least one source and one target file name");
        }

        if (opt.Has("skip-broken-bitmaps") && !opt.Has("bitmaps"))
        {
            throw new ArgumentException("Use of --skip-broken-bitmaps requires --bitmaps");
        }

        Dictionary<string, string> o = CreateSpec.ParseOptions(opt.Values("o"));
        if (opt.Has("n") && o.Count > 0)
        {
            throw new ArgumentException("-o has no effect when skipping image creation");
        }

        if (opt.Value("B") is not null && opt.Positional.Count > 2)
        {
            throw new ArgumentException("Having a backing file for the target makes no sense when concatenating multiple input images");
        }

        // Only a target convert creates needs the backing file's format named.
        if (opt.Value("B") is not null && opt.Value("F") is null && !o.ContainsKey("backing_fmt") && !opt.Has("n"))
        {
            throw new ArgumentException("Use of backing file requires explicit backing format");
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
        CreateSpec spec = CreateSpec.From(opt.Value("O") ?? "raw", o, opt.Value("B"), opt.Value("F"), size: 0, target);
        SnapshotArgument? snapshot = SnapshotArgument.From(opt.Value("l"), opt.Value("s"));
        if (snapshot is not null && opt.Positional.Count > 2)
        {
            throw new UsageException("No support for concatenating multiple snapshot");
        }

        var sources = new List<QcowImage>();
        try
        {
            for (int i = 0; i < opt.Positional.Count - 1; i++)
            {
                string path = opt.Positional[i];
                sources.Add(VerbOptions.Open(path, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.WalkingCache, snapshot: snapshot), imageOpts: opt.Has("image-opts")));
            }

            var options = new QcowConvertOptions
            {
                Target = spec.Options,
                ExistingTarget = opt.Has("n"),
                TargetIsZero = opt.Has("target-is-zero"),
                MinSparse = (int)minSparse,
                Compress = opt.Has("c"),
                Parallelism = coroutines,
                IgnoreFlushes = cache == "unsafe",
                Bitmaps = opt.Has("bitmaps"),
                SkipBrokenBitmaps = opt.Has("skip-broken-bitmaps"),
                BitmapSkipped = name => stderr.WriteLine($"{Cli.ProgramName}: warning: Skipping inconsistent bitmap '{name}'"),
            };
            ProgressBar? bar = opt.Has("p") ? new ProgressBar(stdout) : null;
            try
            {
                QcowImage.Convert(sources, target, options, bar);
            }
            catch (InvalidOperationException e) when (e.Message.StartsWith("Cannot copy inconsistent bitmap", StringComparison.Ordinal))
            {
                throw new HintedException(e.Message, "Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it\n");
            }
            bar?.End();
        }
        finally
        {
            sources.ForEach(image => image.Dispose());
        }

        return 0;
    }
}
