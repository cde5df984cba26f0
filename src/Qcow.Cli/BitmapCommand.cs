// qcow bitmap: qemu-img bitmap's --add, --remove, --clear, --enable, --disable and --merge on a
// qcow2 image, run in the order given, with -g, -b and -F, and qemu-img's messages.
using System;
using System.Collections.Generic;
using System.Linq;

namespace Qcow.Cli;

internal static class BitmapCommand
{
    private static readonly string[] s_actions = ["add", "remove", "clear", "enable", "disable", "merge"];

    public static int Run(IReadOnlyList<string> args)
    {
        GetOpt opt = GetOpt.Parse(args, "fgbF", "", ["object", "granularity", "merge"], ["image-opts", "add", "remove", "clear", "enable", "disable"]);
        // The actions run in the order they are given, as qemu-img runs them.
        string[] actions = [.. args.Where(a => a.StartsWith("--", StringComparison.Ordinal) && s_actions.Contains(a[2..].Split('=')[0])).Select(a => a[2..].Split('=')[0])];
        string? granularity = opt.Value("g") ?? opt.Value("granularity");
        if (actions.Length == 0)
        {
            throw new InvalidOperationException("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge");
        }

        if (granularity is not null && !actions.Contains("add"))
        {
            throw new InvalidOperationException("granularity only supported with --add");
        }

        if (opt.Has("F") && !opt.Has("b"))
        {
            throw new InvalidOperationException("-F only supported with -b");
        }

        if (opt.Has("b") && !actions.Contains("merge"))
        {
            throw new InvalidOperationException("Merge bitmap source file only supported with --merge");
        }

        if (opt.Positional.Count != 2)
        {
            throw new InvalidOperationException("Expecting filename and bitmap name");
        }

        long? bytes = granularity is null ? null : Sizes.Parse(granularity);
        (string path, string name) = (opt.Positional[0], opt.Positional[1]);
        using QcowImage image = VerbOptions.Open(path, opt.Value("f"), (file, format) => new QcowOpenOptions { Format = VerbOptions.Format(file, format), OpenBackingFiles = false }, imageOpts: opt.Has("image-opts"));
        using QcowImage? source = opt.Value("b") is { } sourcePath
            ? VerbOptions.Open(sourcePath, opt.Value("F"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.HeaderCache, openBackingFiles: false))
            : null;
        IReadOnlyList<string> merges = opt.Values("merge");
        int merged = 0;
        foreach (string action in actions)
        {
            try
            {
                Action run = action switch
                {
                    "add" => () => image.AddBitmap(name, new QcowBitmapOptions { Granularity = bytes, Disabled = actions.Contains("disable") }),
                    "remove" => () => image.RemoveBitmap(name),
                    "clear" => () => image.ClearBitmap(name),
                    "enable" => () => image.EnableBitmap(name),
                    "disable" => () => image.DisableBitmap(name),
                    _ => () => image.MergeBitmap(name, merges[merged++], source),
                };
                run();
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or KeyNotFoundException or NotSupportedException)
            {
                throw new InvalidOperationException($"Operation {action} on bitmap {name} failed: {e.Message}", e);
            }
        }

        return 0;
    }
}
