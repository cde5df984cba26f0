// Command-line parsing in getopt's manner, as qemu-img and qemu-io parse: short options that may
// take a value (-f qcow2, -fqcow2), long options (--output=json, --output json), flags, and
// positional arguments anywhere; "--" ends the options.
using System;
using System.Collections.Generic;

namespace Qcow.Cli;

internal sealed class GetOpt
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    private GetOpt(List<string> positional)
    {
        Positional = positional;
    }

    public IReadOnlyList<string> Positional { get; }

    /// <param name="args">The arguments after the verb.</param>
    /// <param name="withValue">Short options (one letter each) and long options ("output") that take a value.</param>
    /// <param name="flags">Short and long options that take none.</param>
    public static GetOpt Parse(IReadOnlyList<string> args, string withValue, string flags, string[]? longWithValue = null, string[]? longFlags = null)
    {
        longWithValue ??= [];
        longFlags ??= [];
        var positional = new List<string>();
        var parsed = new GetOpt(positional);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg == "--")
            {
                positional.AddRange(Rest(args, i + 1));
                break;
            }

            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                string name = arg[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0)
                {
                    value = name[(eq + 1)..];
                    name = name[..eq];
                }

                if (Array.IndexOf(longWithValue, name) >= 0)
                {
                    value ??= i + 1 < args.Count ? args[++i] : throw new UsageException($"option '--{name}' requires an argument");
                    parsed.Add(name, value);
                }
                else if (Array.IndexOf(longFlags, name) >= 0 && value is null)
                {
                    parsed.Add(name, "");
                }
                else
                {
                    throw new UsageException($"unrecognized option '{arg}'");
                }
            }
            else if (arg.Length > 1 && arg[0] == '-' && !char.IsDigit(arg[1]))
            {
                for (int j = 1; j < arg.Length; j++)
                {
                    string letter = arg[j].ToString();
                    if (withValue.Contains(arg[j]))
                    {
                        string value = j + 1 < arg.Length ? arg[(j + 1)..] : i + 1 < args.Count ? args[++i] : throw new UsageException($"option requires an argument -- '{letter}'");
                        parsed.Add(letter, value);
                        break;
                    }

                    if (!flags.Contains(arg[j]))
                    {
                        throw new UsageException($"invalid option -- '{letter}'");
                    }

                    parsed.Add(letter, "");
                }
            }
            else
            {
                positional.Add(arg);
            }
        }

        return parsed;
    }

    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>The last value given for an option, or null.</summary>
    public string? Value(string name) => _values.TryGetValue(name, out List<string>? v) ? v[^1] : null;

    /// <summary>Every value given for an option, in order.</summary>
    public IReadOnlyList<string> Values(string name) => _values.TryGetValue(name, out List<string>? v) ? v : [];

    private void Add(string name, string value)
    {
        if (!_values.TryGetValue(name, out List<string>? list))
        {
            _values[name] = list = new List<string>();
        }

        list.Add(value);
    }

    private static IEnumerable<string> Rest(IReadOnlyList<string> args, int from)
    {
        for (int i = from; i < args.Count; i++)
        {
            yield return args[i];
        }
    }
}

/// <summary>The command line is wrong: printed as one line, exit status 1.</summary>
internal sealed class UsageException : Exception
{
    public UsageException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// A refusal with a hint on the next line, printed as QEMU prints an error with an appended hint
/// that does not end its line (qemu-img's "Detected format of qcow2." ends the output without a newline).
/// </summary>
internal sealed class HintedException : Exception
{
    public HintedException(string message, string hint)
        : base(message)
    {
        Hint = hint;
    }

    public string Hint { get; }
}
