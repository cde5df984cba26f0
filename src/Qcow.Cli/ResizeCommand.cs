// qcow resize: qemu-img resize's FILE [+|-]SIZE, --shrink and its messages.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Qcow.Cli;

internal static class ResizeCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        // As qemu-img, the size is taken off the end first, so that "-1G" is not read as an option.
        if (args.Count < 2)
        {
            throw new UsageException("Expecting image file name and size");
        }

        string sizeText = args[^1];
        GetOpt opt = GetOpt.Parse([.. args.Take(args.Count - 1)], "f", "q", ["preallocation"], ["shrink"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting image file name and size");
        }

        string preallocation = opt.Value("preallocation") ?? "off";
        if (preallocation is not ("off" or "metadata" or "falloc" or "full"))
        {
            throw new UsageException($"Invalid preallocation mode: '{preallocation}'");
        }

        string path = opt.Positional[0];
        long current;
        QcowImageFormat format = VerbOptions.Format(path, opt.Value("f"));
        using (QcowImage image = QcowImage.Open(path, new QcowOpenOptions { ReadOnly = true, ForceShare = true, Format = format, CacheSize = VerbOptions.HeaderCache, OpenBackingFiles = false }))
        {
            current = image.Length;
        }

        long size = sizeText[0] switch
        {
            '+' => current + Sizes.Parse(sizeText[1..]),
            '-' => current - Sizes.Parse(sizeText[1..]),
            _ => Sizes.Parse(sizeText),
        };
        if (size < 0)
        {
            throw new UsageException("New image size must be positive");
        }

        try
        {
            var options = new QcowResizeOptions
            {
                Format = format,
                Shrink = opt.Has("shrink"),
                Preallocation = Enum.Parse<QcowPreallocation>(preallocation, ignoreCase: true),
            };
            QcowImage.Resize(path, size, options);
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("Use the --shrink", StringComparison.Ordinal))
        {
            stderr.WriteLine($"{Cli.ProgramName}: {e.Message}");
            stderr.WriteLine($"{Cli.ProgramName}: warning: Shrinking an image will delete all data beyond the shrunken image's end. Before performing such an operation, make sure there is no important data there.");
            return 1;
        }

        if (!opt.Has("q"))
        {
            stdout.WriteLine("Image resized.");
        }

        return 0;
    }
}
