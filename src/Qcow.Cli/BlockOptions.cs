// QEMU's ways of naming what to open, read into one BlockTarget: a path; "file:PATH";
// "blkdebug:CONFIG:PATH"; "json:{...}" (QEMU's JSON, single quotes allowed); --image-opts strings
// and qemu-io's open -o lists of key=value options. Options form a tree by their dotted keys: a
// format's bytes are its "file" child, blkdebug's are its "image" child. Only names a user typed
// are read this way: a backing name stored inside an image is never followed into json: or a
// protocol.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;

namespace Qcow.Cli;

internal static class BlockOptions
{
    private static readonly HashSet<string> s_formats = new(StringComparer.Ordinal) { "qcow2", "qcow", "raw" };

    private static readonly HashSet<string> s_protocols = new(StringComparer.Ordinal) { "file", "host_device", "host_cdrom" };

    /// <summary>The qcow2 driver's runtime options and the generic ones: taken, with no effect here.</summary>
    private static readonly HashSet<string> s_formatOptions = new(StringComparer.Ordinal)
    {
        "cache-size", "l2-cache-size", "l2-cache-entry-size", "refcount-cache-size", "cache-clean-interval",
        "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot", "pass-discard-other", "discard-no-unref",
        "overlap-check", "cache.direct", "cache.no-flush", "read-only", "auto-read-only", "force-share", "discard",
        "detect-zeroes", "node-name", "backing.node-name",
    };

    /// <summary>The file protocol's options: taken, with no effect here.</summary>
    private static readonly HashSet<string> s_protocolOptions = new(StringComparer.Ordinal)
    {
        "filename", "locking", "aio", "aio-max-batch", "cache.direct", "cache.no-flush", "pr-manager", "drop-cache",
        "x-check-cache-dropped", "read-only", "auto-read-only", "force-share", "discard", "detect-zeroes", "node-name",
    };

    /// <summary>What a filter without options of its own takes.</summary>
    private static readonly HashSet<string> s_filterOptions = new(StringComparer.Ordinal)
    {
        "node-name", "read-only", "auto-read-only", "force-share", "discard", "detect-zeroes",
    };

    /// <summary>The null drivers' options.</summary>
    private static readonly HashSet<string> s_nullOptions = new(StringComparer.Ordinal)
    {
        "size", "latency-ns", "read-zeroes", "node-name", "read-only", "auto-read-only", "force-share", "discard", "detect-zeroes",
    };

    /// <summary>blkdebug's request limits: they change how requests are cut, never what is read or written.</summary>
    private static readonly HashSet<string> s_blkdebugOptions = new(StringComparer.Ordinal)
    {
        "config", "x-image", "image", "align", "max-transfer", "opt-write-zero", "max-write-zero", "opt-discard",
        "max-discard", "node-name", "read-only", "auto-read-only", "force-share", "discard", "detect-zeroes",
    };

    /// <summary>
    /// What an image name (or, with --image-opts, the options it is), a format (-f) and qemu-io's
    /// open -o lists open. Options given explicitly win over the ones a json: name holds.
    /// </summary>
    public static BlockTarget Resolve(string name, string? format, bool imageOpts, IReadOnlyList<string> driverOptions)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        string? filename = null;
        if (imageOpts)
        {
            AddList(options, name);
        }
        else if (name.Length > 0)
        {
            filename = name;
        }

        foreach (string list in driverOptions)
        {
            AddList(options, list);
        }

        if (format is not null)
        {
            options.TryAdd("driver", format);
        }

        return Node(options, filename, isChild: false);
    }

    /// <summary>A node: a format over its file, blkdebug over its image, or a protocol's file.</summary>
    private static BlockTarget Node(Dictionary<string, string> options, string? filename, bool isChild)
    {
        if (filename is not null && filename.StartsWith("json:", StringComparison.Ordinal))
        {
            foreach ((string key, string value) in FlattenJson(filename["json:".Length..]))
            {
                options.TryAdd(key, value);
            }

            filename = null;
        }

        if (filename is null && options.Remove("filename", out string? named))
        {
            filename = named;
        }

        // Below a format, a name without a driver is a protocol's: the prefix says which.
        if (isChild && !options.ContainsKey("driver") && filename is not null)
        {
            foreach ((string key, string value) in ProtocolOptions(filename))
            {
                options.TryAdd(key, value);
            }

            filename = options.Remove("filename", out string? plain) ? plain : null;
        }

        string? driver = options.GetValueOrDefault("driver");
        if (driver == "blkdebug")
        {
            return Blkdebug(options, filename);
        }

        if (driver == "compress")
        {
            // QEMU's compress filter: every write to the format below it is a compressed one.
            Dictionary<string, string> below = Child(options, "file", out string? belowName);
            Refuse(options, s_filterOptions, "Block format 'compress' does not support the option");
            return Node(below, belowName ?? filename, isChild: true) with { CompressWrites = true };
        }

        if (driver is not null && s_protocols.Contains(driver))
        {
            Refuse(options, s_protocolOptions, $"Block protocol '{driver}' doesn't support the option");
            return new BlockTarget(filename ?? throw new ArgumentException($"The '{driver}' block driver requires a file name"), [], driver);
        }

        if (driver is "null-co" or "null-aio")
        {
            Refuse(options, s_nullOptions, $"Block protocol '{driver}' doesn't support the option");
            string size = options.GetValueOrDefault("size") ?? "1073741824";
            return new BlockTarget($"{driver}://", [], driver, NullSize: long.TryParse(size, out long zeros) && zeros >= 0
                ? zeros : throw new ArgumentException($"Parameter 'size' expects a non-negative number below 2^64"));
        }

        if (isChild && driver is null)
        {
            Refuse(options, s_protocolOptions, "Block protocol 'file' doesn't support the option");
            return new BlockTarget(filename ?? throw new ArgumentException("A block device must be specified for \"file\""), [], null);
        }

        // A format (or, with no driver, whatever the file probes as) over its "file" child;
        // "backing": null opens it without its backing file.
        Dictionary<string, string> file = Child(options, "file", out string? fileName);
        Qcow2CacheOptions cache = Qcow2CacheOptions.Take(options);
        string? backingDriver = options.Remove("backing.driver", out string? backingNamed) ? backingNamed : null;
        bool noBacking = options.Remove("backing", out string? backing) && (backing is "null" or "" ? true
            : throw new NotSupportedException("a backing node given in the options is not supported by qcow yet"));
        Refuse(options, s_formatOptions, $"Block format '{driver ?? "qcow2"}' does not support the option");
        BlockTarget bytes = Node(file, fileName ?? filename ?? (file.Count == 0 ? throw new ArgumentException("A block device must be specified for \"file\"") : null), isChild: true);
        // Limits of a blkdebug below a format cut the format's requests to its file, which changes
        // nothing a guest sees.
        return bytes with
        {
            Formats = [driver, .. bytes.Formats],
            NoBacking = !isChild && noBacking,
            Limits = null,
            Cache = isChild ? bytes.Cache : cache,
            BackingFormat = isChild ? bytes.BackingFormat : backingDriver,
        };
    }

    /// <summary>
    /// blkdebug: its rules (from its config file and its inject-error and set-state options)
    /// become the faults injected into the image file under it, and its request limits are taken.
    /// On top of a format it sees none of the format's events, so its rules never arm there.
    /// </summary>
    private static BlockTarget Blkdebug(Dictionary<string, string> options, string? filename)
    {
        QcowFaultInjection faults = BlkdebugRules.Read(options);
        Dictionary<string, string> image = Child(options, "image", out string? imageName);
        if (options.Remove("x-image", out string? xImage))
        {
            imageName ??= xImage;
        }

        options.Remove("driver");
        Refuse(options, s_blkdebugOptions, "Block format 'blkdebug' does not support the option");
        var limits = new RequestLimits(
            Limit(options, "align") is > 0 and var align ? align : 1,
            Limit(options, "opt-write-zero"),
            Limit(options, "max-write-zero"),
            Limit(options, "opt-discard"),
            Limit(options, "max-discard"),
            Limit(options, "max-transfer"));
        BlockTarget below = Node(image, imageName ?? filename ?? (image.Count == 0 ? throw new ArgumentException("A block device must be specified for \"image\"") : null), isChild: true);
        return below with { Limits = limits, Faults = below.Formats.Count == 0 ? faults : null };
    }

    /// <summary>A blkdebug size option (0 when not given).</summary>
    private static long Limit(Dictionary<string, string> options, string key) =>
        options.TryGetValue(key, out string? value) ? Sizes.Parse(value) : 0;

    /// <summary>A protocol name's options: "blkdebug:CONFIG:IMAGE", "file:PATH", "json:{...}" or a plain path.</summary>
    private static Dictionary<string, string> ProtocolOptions(string name)
    {
        if (name.StartsWith("blkdebug:", StringComparison.Ordinal))
        {
            string rest = name["blkdebug:".Length..];
            int colon = rest.IndexOf(':');
            if (colon < 0)
            {
                throw new ArgumentException("Invalid filename format");
            }

            return new(StringComparer.Ordinal) { ["driver"] = "blkdebug", ["config"] = rest[..colon], ["x-image"] = rest[(colon + 1)..] };
        }

        if (name.StartsWith("file:", StringComparison.Ordinal))
        {
            // As QEMU: a name left with a colon before its first slash would read as another
            // protocol's, so it is made relative explicitly ("file:a:b" opens "./a:b").
            string path = name["file:".Length..];
            return new(StringComparer.Ordinal) { ["driver"] = "file", ["filename"] = HasProtocol(path) ? "./" + path : path };
        }

        if (name.StartsWith("json:", StringComparison.Ordinal))
        {
            return FlattenJson(name["json:".Length..]);
        }

        if (name is "null-co://" or "null-aio://")
        {
            return new(StringComparer.Ordinal) { ["driver"] = name[..^3] };
        }

        return new(StringComparer.Ordinal) { ["filename"] = name };
    }

    /// <summary>QEMU's test for a protocol prefix: a colon before the first slash.</summary>
    private static bool HasProtocol(string path)
    {
        int colon = path.IndexOf(':');
        int slash = path.IndexOf('/');
        return colon >= 0 && (slash < 0 || colon < slash);
    }

    /// <summary>The options under "<paramref name="key"/>." with that prefix taken off, removed from <paramref name="options"/>; a plain string under the key itself is the child's name.</summary>
    private static Dictionary<string, string> Child(Dictionary<string, string> options, string key, out string? name)
    {
        var child = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string k in options.Keys.Where(k => k.StartsWith(key + ".", StringComparison.Ordinal)).ToList())
        {
            child[k[(key.Length + 1)..]] = options[k];
            options.Remove(k);
        }

        name = options.Remove(key, out string? value) ? value : null;
        return child;
    }

    /// <summary>Refuses, in QEMU's words, an option the node's driver does not take.</summary>
    private static void Refuse(Dictionary<string, string> options, HashSet<string> known, string words)
    {
        foreach (string key in options.Keys)
        {
            if (key != "driver" && !known.Contains(key) && !key.StartsWith("overlap-check.", StringComparison.Ordinal))
            {
                throw new ArgumentException($"{words} '{key}'");
            }
        }
    }

    /// <summary>The options key=value lists give, flat (later lists win).</summary>
    public static Dictionary<string, string> Parse(IEnumerable<string> lists)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string list in lists)
        {
            AddList(options, list);
        }

        return options;
    }

    /// <summary>QEMU's key=value[,key=value...] list ("on" for a bare key).</summary>
    private static void AddList(Dictionary<string, string> options, string list)
    {
        foreach (string option in list.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = option.IndexOf('=');
            options[eq < 0 ? option : option[..eq]] = eq < 0 ? "on" : option[(eq + 1)..];
        }
    }

    /// <summary>QEMU's JSON block options as flat dotted keys ("file": {"filename": X} is file.filename=X).</summary>
    private static Dictionary<string, string> FlattenJson(string json)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(DoubleQuoted(json));
            Add(options, "", document.RootElement);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"Could not parse the JSON options: {e.Message}", e);
        }

        return options;
    }

    private static void Add(Dictionary<string, string> options, string key, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (JsonProperty property in element.EnumerateObject())
                {
                    Add(options, Join(key, property.Name), property.Value);
                }

                break;
            case JsonValueKind.Array:
                // QEMU flattens a list's items by their index: inject-error.0.event.
                int index = 0;
                foreach (JsonElement item in element.EnumerateArray())
                {
                    Add(options, Join(key, (index++).ToString(System.Globalization.CultureInfo.InvariantCulture)), item);
                }

                break;
            default:
                options[key] = element.ValueKind switch
                {
                    JsonValueKind.String => element.GetString()!,
                    JsonValueKind.True => "on",
                    JsonValueKind.False => "off",
                    _ => element.GetRawText(),
                };
                break;
        }
    }

    private static string Join(string key, string name) => key.Length == 0 ? name : key + "." + name;

    /// <summary>QEMU's JSON parser also takes single-quoted strings: they are rewritten double-quoted for .NET's.</summary>
    private static string DoubleQuoted(string json)
    {
        var text = new StringBuilder(json.Length);
        for (int i = 0; i < json.Length; i++)
        {
            char quote = json[i];
            if (quote is not ('\'' or '"'))
            {
                text.Append(quote);
                continue;
            }

            text.Append('"');
            for (i++; i < json.Length && json[i] != quote; i++)
            {
                char c = json[i];
                if (c == '\\' && i + 1 < json.Length)
                {
                    // An escaped single quote needs no escape in double quotes.
                    text.Append(json[i + 1] == '\'' ? "'" : json.Substring(i, 2));
                    i++;
                }
                else
                {
                    text.Append(c == '"' ? "\\\"" : c.ToString());
                }
            }

            text.Append('"');
        }

        return text.ToString();
    }
}
