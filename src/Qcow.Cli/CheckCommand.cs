// qcow check: qemu-img check's arguments, report (human or JSON) and exit codes.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Qcow.Cli;

internal static class CheckCommand
{
    // qemu-img check's exit codes.
    private const int Clean = 0;
    private const int NotCompleted = 1;
    private const int Corrupt = 2;
    private const int LeaksOnly = 3;
    private const int NoChecks = 63;

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "fr", "qU", ["output"], ["force-share", "image-opts"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        string path = opt.Positional[0];
        QcowCheckMode mode = opt.Value("r") switch
        {
            null => QcowCheckMode.ReportOnly,
            "leaks" => QcowCheckMode.RepairLeaks,
            "all" => QcowCheckMode.RepairAll,
            string other => throw new UsageException($"Unknown option value for -r (expecting 'leaks' or 'all'): {other}"),
        };
        bool json = VerbOptions.Json(opt);

        bool shared = opt.Has("U") || opt.Has("force-share");
        if (shared && mode != QcowCheckMode.ReportOnly)
        {
            throw new UsageException("force-share=on can only be used with read-only images");
        }

        // As qemu-img: the image is opened first (a failure is "Could not open"), then asked for a check.
        QcowCheckResult result;
        using (QcowImage image = VerbOptions.Open(path, opt.Value("f"), (file, format) => new QcowOpenOptions
        {
            Format = VerbOptions.Format(file, format),
            ReadOnly = mode == QcowCheckMode.ReportOnly,
            ForceCorrupt = true,
            ForceShare = shared,
        }, imageOpts: opt.Has("image-opts")))
        {
            if (image.Info.Format != QcowImageFormat.Qcow2)
            {
                stderr.WriteLine($"{Cli.ProgramName}: This image format does not support checks");
                return NoChecks;
            }

            result = image.Check(mode);
        }

        foreach (string message in result.Messages)
        {
            stderr.WriteLine(message);
        }

        if (!result.Completed)
        {
            stderr.WriteLine($"{Cli.ProgramName}: Check failed: Input/output error");
            return NotCompleted;
        }

        if (json)
        {
            stdout.WriteLine(Json(path, result));
        }
        else if (!opt.Has("q"))
        {
            stdout.Write(Human(result));
        }

        if (result.CheckErrors > 0)
        {
            stderr.WriteLine($"{Cli.ProgramName}: Check failed");
        }

        return result.CheckErrors > 0 ? NotCompleted
            : result.Corruptions > 0 ? Corrupt
            : result.Leaks > 0 ? LeaksOnly
            : Clean;
    }

    /// <summary>qemu-img's ImageCheck object: optional counts appear only when not zero.</summary>
    public static string Json(string path, QcowCheckResult r) => new QemuJson()
        .Add("filename", path)
        .Add("format", "qcow2")
        .Add("check-errors", r.CheckErrors)
        .AddIf(r.ImageEndOffset != 0, "image-end-offset", r.ImageEndOffset)
        .AddIf(r.Corruptions != 0, "corruptions", r.Corruptions)
        .AddIf(r.Leaks != 0, "leaks", r.Leaks)
        .AddIf(r.CorruptionsFixed != 0, "corruptions-fixed", r.CorruptionsFixed)
        .AddIf(r.LeaksFixed != 0, "leaks-fixed", r.LeaksFixed)
        .AddIf(r.TotalClusters != 0, "total-clusters", r.TotalClusters)
        .AddIf(r.AllocatedClusters != 0, "allocated-clusters", r.AllocatedClusters)
        .AddIf(r.FragmentedClusters != 0, "fragmented-clusters", r.FragmentedClusters)
        .AddIf(r.CompressedClusters != 0, "compressed-clusters", r.CompressedClusters)
        .ToString();

    public static string Human(QcowCheckResult r)
    {
        var s = new StringBuilder();
        if (r.CorruptionsFixed != 0 || r.LeaksFixed != 0)
        {
            s.Append("The following inconsistencies were found and repaired:\n\n");
            s.Append($"    {r.LeaksFixed} leaked clusters\n    {r.CorruptionsFixed} corruptions\n\n");
            s.Append("Double checking the fixed image now...\n");
        }

        if (r.IsClean)
        {
            s.Append("No errors were found on the image.\n");
        }

        if (r.Corruptions != 0)
        {
            s.Append($"\n{r.Corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n");
        }

        if (r.Leaks != 0)
        {
            s.Append($"\n{r.Leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n");
        }

        if (r.CheckErrors != 0)
        {
            s.Append($"\n{r.CheckErrors} internal errors have occurred during the check.\n");
        }

        if (r.TotalClusters != 0 && r.AllocatedClusters != 0)
        {
            FormattableString figures = $"{r.AllocatedClusters}/{r.TotalClusters} = {r.AllocatedClusters * 100.0 / r.TotalClusters:F2}% allocated, {r.FragmentedClusters * 100.0 / r.AllocatedClusters:F2}% fragmented, {r.CompressedClusters * 100.0 / r.AllocatedClusters:F2}% compressed clusters\n";
            s.Append(FormattableString.Invariant(figures));
        }

        if (r.ImageEndOffset != 0)
        {
            s.Append($"Image end offset: {r.ImageEndOffset}\n");
        }

        return s.ToString();
    }
}
