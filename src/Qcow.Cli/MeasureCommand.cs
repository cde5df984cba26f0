// qcow measure: qemu-img measure's required and fully allocated sizes for a new image, from a
// size or from an existing image's allocation, over QcowImage.Measure.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal static class MeasureCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "fOo", "U", ["output", "size"], ["force-share", "image-opts"]);
        bool json = VerbOptions.Json(opt);

        if ((opt.Value("size") is null) == (opt.Positional.Count == 0) || opt.Positional.Count > 1)
        {
            throw new UsageException("Either --size N or one filename must be specified.");
        }

        string format = opt.Value("O") ?? "raw";
        if (format is not ("raw" or "qcow2" or "qcow"))
        {
            throw new UsageException($"Unknown file format '{format}'");
        }

        long? size = opt.Value("size") is { } s ? Sizes.Parse(s) : null;
        Dictionary<string, string> o = CreateSpec.ParseOptions(opt.Values("o"));
        QcowCreateOptions target = CreateSpec.From(format, o, null, null, size, opt.Positional.Count == 1 ? opt.Positional[0] : "").Options;

        if (target.Format == QcowImageFormat.Qcow)
        {
            throw new InvalidOperationException("Block driver 'qcow' does not support size measurement");
        }

        QcowImage? source = opt.Positional.Count == 1
            ? VerbOptions.Open(opt.Positional[0], opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.WalkingCache), imageOpts: opt.Has("image-opts"))
            : null;
        QcowMeasurement m;
        using (source)
        {
            try
            {
                m = QcowImage.Measure(target, source);
            }
            catch (ArgumentException e)
            {
                // qemu-img calls options out of range a usage error.
                throw new UsageException(Cli.Message(e));
            }
        }

        if (json)
        {
            stdout.WriteLine(new QemuJson().Add("required", m.Required).Add("fully-allocated", m.FullyAllocated).AddIf(m.Bitmaps.HasValue, "bitmaps", m.Bitmaps.GetValueOrDefault()).ToString());
        }
        else
        {
            stdout.Write($"required size: {m.Required}\nfully allocated size: {m.FullyAllocated}\n{(m.Bitmaps.HasValue ? $"bitmaps size: {m.Bitmaps}\n" : "")}");
        }

        return 0;
    }
}
