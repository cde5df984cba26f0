// qcow commit: qemu-img commit's -b, -d, -p, -q (-t, -r and --object are taken, as options that
// change nothing Qcow does).
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal static class CommitCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "fbtr", "dpq", ["object"], ["image-opts"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        // A rate limit is validated as qemu-img validates it; Qcow copies at full speed.
        if (opt.Value("r") is { } rate)
        {
            Sizes.Parse(rate);
        }

        string path = opt.Positional[0];
        var options = new QcowCommitOptions
        {
            Format = opt.Value("f") is { } f ? VerbOptions.FormatNamed(f, path) : null,
            Base = opt.Value("b"),
            KeepOverlay = opt.Has("d"),
        };
        bool quiet = opt.Has("q");
        ProgressBar? bar = opt.Has("p") && !quiet ? new ProgressBar(stdout) : null;
        bar?.Report(0);
        QcowImage.Commit(path, options, bar);
        bar?.End();
        if (!quiet)
        {
            stdout.WriteLine("Image committed.");
        }

        return 0;
    }
}
