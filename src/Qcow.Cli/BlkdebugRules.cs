// blkdebug's rules as QEMU reads them: [inject-error] and [set-state] sections of its config
// file (key = "value" lines) and its inject-error.N.* and set-state.N.* options, as the library's
// fault injection. Events Qcow's driver does not announce are refused, rather than never firing.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace Qcow.Cli;

internal static class BlkdebugRules
{
    private static readonly Dictionary<string, QcowDriverEvent> s_events = new(StringComparer.Ordinal)
    {
        ["l1_update"] = QcowDriverEvent.L1Update,
        ["l2_load"] = QcowDriverEvent.L2Load,
        ["l2_update"] = QcowDriverEvent.L2Update,
        ["l2_alloc_write"] = QcowDriverEvent.L2AllocWrite,
        ["read_aio"] = QcowDriverEvent.ReadAio,
        ["write_aio"] = QcowDriverEvent.WriteAio,
        ["refblock_load"] = QcowDriverEvent.RefblockLoad,
        ["refblock_update"] = QcowDriverEvent.RefblockUpdate,
        ["flush_to_disk"] = QcowDriverEvent.FlushToDisk,
    };

    /// <summary>The rules of blkdebug's options (its config file's first, as QEMU reads them); the rule options are taken out.</summary>
    public static QcowFaultInjection Read(Dictionary<string, string> options)
    {
        var sections = new List<(string Kind, Dictionary<string, string> Fields)>();
        if (options.GetValueOrDefault("config") is { Length: > 0 } config)
        {
            sections.AddRange(ConfigSections(config));
        }

        foreach (string kind in new[] { "inject-error", "set-state" })
        {
            foreach (IGrouping<string, string> rule in options.Keys.Where(k => k.StartsWith(kind + ".", StringComparison.Ordinal)).ToList().GroupBy(k => k.Split('.')[1]))
            {
                var fields = rule.ToDictionary(k => k[(kind.Length + rule.Key.Length + 2)..], k => options[k], StringComparer.Ordinal);
                rule.ToList().ForEach(k => options.Remove(k));
                sections.Add((kind, fields));
            }
        }

        var faults = new List<QcowFault>();
        var changes = new List<QcowFaultStateChange>();
        foreach ((string kind, Dictionary<string, string> f) in sections)
        {
            QcowDriverEvent driverEvent = Event(f.GetValueOrDefault("event") ?? throw new ArgumentException("Missing event name for rule"));
            if (kind == "inject-error")
            {
                if (f.GetValueOrDefault("iotype") is { } types && types.Split(',').Any(t => t.Trim() is not ("read" or "write")))
                {
                    throw new NotSupportedException($"blkdebug's iotype '{types}' is not supported by qcow yet (faults fail reads and writes)");
                }

                faults.Add(new QcowFault(
                    driverEvent,
                    Number(f, "errno", 5),
                    Flag(f, "once"),
                    f.ContainsKey("sector") ? Number(f, "sector", 0) * 512L : null,
                    Number(f, "state", 0)));
            }
            else if (kind == "set-state")
            {
                changes.Add(new QcowFaultStateChange(driverEvent, Number(f, "new_state", 0), Number(f, "state", 0)));
            }
            else
            {
                throw new ArgumentException($"Unknown blkdebug rule section '[{kind}]'");
            }
        }

        return new QcowFaultInjection { Faults = faults, StateChanges = changes };
    }

    private static QcowDriverEvent Event(string name) =>
        s_events.TryGetValue(name, out QcowDriverEvent e) ? e : throw new NotSupportedException($"blkdebug's event '{name}' is not raised by qcow yet");

    private static int Number(Dictionary<string, string> fields, string key, int otherwise) =>
        fields.TryGetValue(key, out string? text) ? int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture) : otherwise;

    private static bool Flag(Dictionary<string, string> fields, string key) => fields.GetValueOrDefault(key) is "on" or "true" or "yes";

    /// <summary>The [inject-error] and [set-state] sections of a config file, each with its key = "value" fields.</summary>
    private static IEnumerable<(string Kind, Dictionary<string, string> Fields)> ConfigSections(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (IOException e)
        {
            throw new IOException($"Could not read blkdebug config file: {SystemErrors.Text(e.Message)}", e);
        }

        (string Kind, Dictionary<string, string> Fields)? current = null;
        foreach (string raw in lines)
        {
            string line = raw.Trim();
            if (line.StartsWith('['))
            {
                if (current is { } done)
                {
                    yield return done;
                }

                current = (line.Trim('[', ']'), new Dictionary<string, string>(StringComparer.Ordinal));
            }
            else if (current is { } section && line.IndexOf('=') is > 0 and int eq)
            {
                section.Fields[line[..eq].Trim()] = line[(eq + 1)..].Trim().Trim('"');
            }
        }

        if (current is { } last)
        {
            yield return last;
        }
    }
}
