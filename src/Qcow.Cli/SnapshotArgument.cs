// An internal snapshot named on the command line, as qemu-img convert takes one: -l NAME (an ID
// or a name), -l snapshot.id=ID,snapshot.name=NAME (each exact), or the older -s ID_OR_NAME.
using System;

namespace Qcow.Cli;

internal sealed record SnapshotArgument(string? IdOrName, string? Id, string? Name)
{
    private const string OptionBase = "snapshot.";

    /// <summary>The snapshot -l or -s names; null when neither is given.</summary>
    public static SnapshotArgument? From(string? l, string? s)
    {
        if (l is null)
        {
            return s is null ? null : new SnapshotArgument(s, null, null);
        }

        if (!l.StartsWith(OptionBase, StringComparison.Ordinal))
        {
            return new SnapshotArgument(l, null, null);
        }

        string? id = null;
        string? name = null;
        foreach (string pair in l.Split(','))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? pair : pair[..eq];
            string value = eq < 0 ? "" : pair[(eq + 1)..];
            switch (key)
            {
                case "snapshot.id":
                    id = value;
                    break;
                case "snapshot.name":
                    name = value;
                    break;
                default:
                    throw new UsageException($"Invalid parameter '{key}'");
            }
        }

        return new SnapshotArgument(null, id, name);
    }
}
