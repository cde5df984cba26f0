// qcow snapshot: qemu-img snapshot's -l, -c, -a and -d on a closed image, with its messages.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Qcow.Cli;

internal static class SnapshotCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "facd", "lqU", [], ["force-share", "image-opts"]);
        string[] actions = [.. new[] { "l", "a", "c", "d" }.Where(opt.Has)];
        if (actions.Sum(a => opt.Values(a).Count) > 1)
        {
            throw new UsageException("Cannot mix '-l', '-a', '-c', '-d'");
        }

        string? action = actions.SingleOrDefault();
        string? snapshot = action is null or "l" ? null : opt.Value(action);

        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        string path = opt.Positional[0];
        switch (action)
        {
            case "l":
                using (QcowImage image = VerbOptions.Open(path, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.HeaderCache, openBackingFiles: false), imageOpts: opt.Has("image-opts")))
                {
                    if (image.Info.Snapshots.Count > 0)
                    {
                        stdout.Write(InfoCommand.SnapshotList(image.Info.Snapshots));
                    }
                }

                break;
            case "c":
                Change(() => QcowImage.CreateSnapshot(path, snapshot!), "create", snapshot!);
                break;
            case "a":
                Change(() => QcowImage.ApplySnapshot(path, snapshot!), "apply", snapshot!);
                break;
            case "d":
                Change(() => QcowImage.DeleteSnapshot(path, snapshot!), "delete", snapshot!);
                break;
        }

        return 0;
    }

    /// <summary>Makes a change, failing in qemu-img's words for each verb.</summary>
    private static void Change(Action change, string verb, string snapshot)
    {
        try
        {
            change();
        }
        catch (QcowRefcountOverflowException)
        {
            throw new InvalidOperationException($"Could not {verb} snapshot '{snapshot}': -22 (Invalid argument)");
        }
        catch (InvalidOperationException e) when (verb == "apply")
        {
            throw new InvalidOperationException($"Could not apply snapshot '{snapshot}': {e.Message}", e);
        }
        catch (NotSupportedException)
        {
            throw new InvalidOperationException($"Could not {verb} snapshot '{snapshot}': -95 (Operation not supported)");
        }
        catch (KeyNotFoundException)
        {
            throw new InvalidOperationException(verb == "apply"
                ? $"Could not apply snapshot '{snapshot}': Failed to load snapshot: No such file or directory"
                : $"Could not {verb} snapshot '{snapshot}': snapshot not found");
        }
    }
}
