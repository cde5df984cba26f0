// qcow create: qemu-img create's syntax and output.
using System;
using System.Collections.Generic;
using System.IO;

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

        // file:PATH names the file protocol: the image is PATH.
        string name = opt.Positional[0];
        string path = name.StartsWith("file:", StringComparison.Ordinal) ? name["file:".Length..] : name;
        long? size = opt.Positional.Count == 2 ? ImageSize(opt.Positional[1]) : null;
        CreateSpec spec = CreateSpec.From(format, options, opt.Value("b"), opt.Value("F"), size, path);
        bool unsafeBacking = opt.Has("u");
        if (spec.Options.BackingFile is { } backing)
        {
            string? backingFormat = opt.Value("F") ?? options.GetValueOrDefault("backing_fmt");
            long? length = OpenBacking(path, backing, backingFormat, unsafeBacking);
            if (!spec.SizeGiven)
            {
                spec = CreateSpec.From(format, options, opt.Value("b"), opt.Value("F"), length ?? throw new ArgumentException($"{path}: Image creation needs a size parameter"), path);
            }
        }
        else if (!spec.SizeGiven)
        {
            throw new UsageException("Image creation needs a size parameter");
        }

        if (!opt.Has("q"))
        {
            stdout.WriteLine(spec.Describe(name));
        }

        // The backing file was opened above, as qemu-img opens it; the new image is not opened with it.
        try
        {
            QcowImage.Create(path, spec.Options with { OpenBackingFile = false }).Dispose();
        }
        catch (ArgumentException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            // qemu-img names the image an option is refused for.
            throw new ArgumentException($"{name}: {Cli.Message(e)}", e);
        }
        return 0;
    }

    /// <summary>The size argument, refused in qemu-img's two lines.</summary>
    private static long ImageSize(string text)
    {
        try
        {
            return Sizes.Parse(text);
        }
        catch (UsageException)
        {
            throw new HintedException(
                "Invalid image size specified. You may use k, M, G, T, P or E suffixes for",
                $"{Cli.ProgramName}: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.\n");
        }
    }

    /// <summary>
    /// qemu-img 7.2's rules for a backing file: it is opened (unless -u), which refuses a missing
    /// one, and its format must be given; the refusal names the format it was detected as.
    /// Returns its length, or null when it is not opened.
    /// </summary>
    private static long? OpenBacking(string path, string backing, string? backingFormat, bool unsafeBacking)
    {
        QcowImageFormat? format = backingFormat is null ? null : VerbOptions.FormatNamed(backingFormat, path);
        long? length = unsafeBacking ? null : QcowImage.GetBackingFileLength(path, backing, format);
        if (backingFormat is null)
        {
            string refusal = $"{path}: Backing file specified without backing format";
            throw unsafeBacking
                ? new ArgumentException(refusal)
                : new HintedException(refusal, $"Detected format of {VerbOptions.Name(QcowImage.Probe(QcowImage.ResolveBackingFile(path, backing)))}.");
        }

        return length;
    }
}
