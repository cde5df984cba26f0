// What qemu-io's reopen -o may and may not do, as QEMU's bdrv_reopen decides it: -r/-w and -c
// exclude the options they stand for, boolean options take on or off, and a node's name and
// driver cannot change (giving them unchanged is fine).
using System;
using System.Collections.Generic;
using System.Linq;

namespace Qcow.Cli;

internal static class ReopenRules
{
    private static readonly string[] s_booleans = ["read-only", "auto-read-only", "cache.direct", "cache.no-flush"];

    /// <summary>The nodes reopen can name: the image, its file, its backing file.</summary>
    private static readonly string[] s_nodes = ["", "file.", "backing."];

    public static void Check(IoSession s, GetOpt opt)
    {
        Dictionary<string, string> given = BlockOptions.Parse(opt.Values("o"));
        if (given.ContainsKey("read-only") && (opt.Has("r") || opt.Has("w")))
        {
            throw Refusal("Cannot set both -r/-w and 'read-only'");
        }

        if ((given.ContainsKey("cache.direct") || given.ContainsKey("cache.no-flush")) && opt.Has("c"))
        {
            throw Refusal("Cannot set both -c and the cache options");
        }

        foreach (string key in s_booleans.Where(k => given.TryGetValue(k, out string? v) && v is not ("on" or "off")))
        {
            throw Refusal($"Parameter '{key}' expects 'on' or 'off'");
        }

        foreach (string node in s_nodes)
        {
            // A name the open gave may be given again; any other would rename the node.
            if (given.TryGetValue(node + "node-name", out string? name) && s.OpenedWith.GetValueOrDefault(node + "node-name") != name)
            {
                throw Refusal("Cannot change the option 'node-name'");
            }

            if (given.TryGetValue(node + "driver", out string? driver) && DriverOf(s, node) != driver)
            {
                throw Refusal("Cannot change the option 'driver'");
            }
        }

        string[] rest = [.. given.Keys.Where(k => !s_booleans.Contains(k) && !s_nodes.Any(n => k == n + "node-name" || k == n + "driver")).Select(k => $"{k}={given[k]}")];
        if (rest.Length > 0)
        {
            BlockOptions.Resolve(s.Path!, s.Flags!.Format, imageOpts: false, [string.Join(',', rest)]);
        }
    }

    /// <summary>The driver a node of the open image has.</summary>
    private static string? DriverOf(IoSession s, string node)
    {
        QcowInfo info = s.Current.Info;
        return node switch
        {
            "" => s.Target is { Formats: [] } target ? target.Protocol ?? "file" : VerbOptions.Name(info.Format),
            "file." => s.Target?.Protocol ?? "file",
            _ => info.Backing is { } backing ? VerbOptions.Name(backing.Format) : info.BackingFormat,
        };
    }

    private static IoCommandException Refusal(string message) => new($"{Cli.ProgramName}: {message}", toStderr: true);
}
