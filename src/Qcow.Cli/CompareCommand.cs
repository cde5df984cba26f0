// qcow compare: qemu-img compare's verdicts, messages and exit codes (0 identical, 1 different,
// 2 error), over QcowImage.Compare.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal static class CompareCommand
{
    private const int Identical = 0;
    private const int Different = 1;
    private const int Error = 2;
    private const int ReadError = 4;

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fF", "spqU", [], ["force-share", "image-opts"]);
        if (opt.Positional.Count != 2)
        {
            throw new UsageException("Expecting two image file names");
        }

        TextWriter say = opt.Has("q") ? TextWriter.Null : stdout;
        try
        {
            string first = opt.Positional[0];
            string second = opt.Positional[1];
            using QcowImage a = VerbOptions.Open(first, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.WalkingCache), imageOpts: opt.Has("image-opts"));
            using QcowImage b = VerbOptions.Open(second, opt.Value("F") ?? opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.WalkingCache), imageOpts: opt.Has("image-opts"));
            ProgressBar? bar = opt.Has("p") ? new ProgressBar(stdout, ProgressBar.CompareStep) : null;
            QcowComparison result;
            try
            {
                result = QcowImage.Compare(a, b, opt.Has("s"), bar);
            }
            catch (QcowCompareReadException e)
            {
                // qemu-img names the image as it was given; its size warning, printed before the
                // read but buffered, comes out after the error.
                string name = e.ImagePath == a.Path ? first : second;
                stderr.WriteLine($"{Cli.ProgramName}: Error while reading offset {e.Offset} of {name}: {SystemErrors.Text(e.Message)}");
                if (a.Length != b.Length && e.Offset >= Math.Min(a.Length, b.Length) && !opt.Has("s"))
                {
                    say.WriteLine("Warning: Image size mismatch!");
                }

                return ReadError;
            }

            say.WriteLine(Verdict(result, Math.Min(a.Length, b.Length)));
            bar?.End();
            return result.Identical ? Identical : Different;
        }
        catch (Exception e) when (e is QcowFormatException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"{Cli.ProgramName}: {Cli.Message(e)}");
            return Error;
        }
    }

    /// <summary>qemu-img's words for the verdict; the size warning comes once the common part has compared equal.</summary>
    private static string Verdict(QcowComparison result, long common)
    {
        string warning = result.SizesDiffer && (result.Offset ?? common) >= common ? "Warning: Image size mismatch!\n" : "";
        return result.Verdict switch
        {
            QcowComparisonVerdict.SizeMismatch => "Strict mode: Image size mismatch!",
            QcowComparisonVerdict.BlockStatusMismatch => $"Strict mode: Offset {result.Offset} block status mismatch!",
            QcowComparisonVerdict.ContentMismatch => $"{warning}Content mismatch at offset {result.Offset}!",
            _ => $"{warning}Images are identical.",
        };
    }
}
