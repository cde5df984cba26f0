// qcow create: qemu-img create's syntax and output.
using System.Collections.Generic;
using System.IO;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.IO;

namespace Qcow.Cli;

internal static class CreateCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "fbFo", "qu");
        string format = opt.Value("f") ?? "raw";
        Dictionary<string, string> options = CreateSpec.ParseOptions(opt.Values("o"));
        if (options.ContainsKey("help") || options.ContainsKey("?"))
        {
            stdout.WriteLine(CreateSpec.Help(format));
            return 0;
        }

        if (opt.Positional.Count < 1 || opt.Positional.Count > 2)
        {
            throw new UsageException("Expecting image file name");
        }

        string path = opt.Positional[0];
        long? size = opt.Positional.Count == 2 ? Sizes.Parse(opt.Positional[1]) : null;
        CreateSpec spec = CreateSpec.From(format, options, opt.Value("b"), opt.Value("F"), size);
        if (!spec.SizeGiven)
        {
            string backing = spec.Options.BackingFile ?? throw new UsageException("Image creation needs a size parameter");
            spec = CreateSpec.From(format, options, opt.Value("b"), opt.Value("F"), BackingSize(path, backing, spec.Options.BackingFormat));
        }

        if (!opt.Has("q"))
        {
            stdout.WriteLine(spec.Describe(path));
        }

        spec.Create(path);
        return 0;
    }

    private static long BackingSize(string image, string backing, string? format)
    {
        // As qemu-img create: the backing file is opened only for its size, sharing it with any writer.
        var settings = new OpenSettings(false, false, VerbOptions.HeaderCache, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, ForceShare: true, OpenBackingFiles: false);
        using IBlockDevice device = ImageOpener.Open(ImageOpener.ResolveBacking(image, backing), format, settings);
        return device.Length;
    }
}
