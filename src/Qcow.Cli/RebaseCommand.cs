// qcow rebase: qemu-img rebase's safe and unsafe (-u) modes, -b "" for none, -F, -p.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal static class RebaseCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "fbFtT", "upqU", [], ["force-share", "image-opts"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        if (!opt.Has("u") && !opt.Has("b"))
        {
            throw new UsageException("Must specify backing file (-b) or use unsafe mode (-u)");
        }

        string path = opt.Positional[0];
        string? backing = opt.Value("b");
        var options = new QcowRebaseOptions
        {
            Format = opt.Value("f") is { } f ? VerbOptions.FormatNamed(f, path) : null,
            BackingFormat = opt.Value("F") is { } b ? VerbOptions.FormatNamed(b, backing ?? path) : null,
            Unsafe = opt.Has("u"),
            ForceShare = opt.Has("U") || opt.Has("force-share"),
        };
        ProgressBar? bar = opt.Has("p") && !opt.Has("q") ? new ProgressBar(stdout) : null;
        bar?.Report(0);
        QcowImage.Rebase(path, backing, options, bar);
        bar?.End();
        return 0;
    }
}
