// qcow dd: qemu-img dd's copy of count blocks of bs bytes, skip blocks in, into a new image.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal static class DdCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fO", "U", [], ["force-share", "image-opts"]);
        var operands = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string operand in opt.Positional)
        {
            int eq = operand.IndexOf('=');
            string key = eq < 0 ? operand : operand[..eq];
            if (eq < 0 || key is not ("if" or "of" or "bs" or "count" or "skip"))
            {
                throw new UsageException($"unrecognized operand {operand}");
            }

            operands[key] = operand[(eq + 1)..];
        }

        if (!operands.TryGetValue("if", out string? input) || !operands.TryGetValue("of", out string? output))
        {
            throw new UsageException("Must specify both input and output files");
        }

        long bs = operands.TryGetValue("bs", out string? b) ? Sizes.Parse(b) : 512;
        if (bs <= 0 || bs > int.MaxValue)
        {
            throw new UsageException($"invalid number: '{b}'");
        }

        using QcowImage source = VerbOptions.Open(input, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.WalkingCache), imageOpts: opt.Has("image-opts"));
        // As qemu-img reckons it: count blocks from the start of the input, of which skip are left out.
        long end = operands.TryGetValue("count", out string? count) ? Math.Min(source.Length, checked(Sizes.Parse(count) * bs)) : source.Length;
        long start = operands.TryGetValue("skip", out string? skip) ? checked(Sizes.Parse(skip) * bs) : 0;
        if (start > end)
        {
            // qemu-img says so and goes on with nothing to copy.
            stderr.WriteLine($"{Cli.ProgramName}: {input}: cannot skip to specified offset");
            start = end;
        }

        long size = end - start;
        QcowCreateOptions created = CreateSpec.From(opt.Value("O") ?? "raw", [], null, null, size, output).Options;
        using QcowImage target = QcowImage.Create(output, created, new QcowOpenOptions { CacheSize = VerbOptions.WalkingCache });
        source.CopyTo(target, start, 0, size, (int)bs);
        return 0;
    }
}
