// Image names as QEMU's tools take them on the command line: a path, "file:PATH" (the file
// protocol named), or "json:{...}" (the block options as JSON, flat "file.filename" keys or nested
// objects). Only names a user typed are read this way: a backing name stored inside an image is
// never followed into json: or a protocol.
using System;
using System.Collections.Generic;
using System.Text.Json;

namespace Qcow.Cli;

internal static class ImageName
{
    /// <summary>The file a command-line image name opens, and the format it names (null: probe).</summary>
    public static (string File, string? Format) Resolve(string name)
    {
        if (name.StartsWith("file:", StringComparison.Ordinal))
        {
            return (name["file:".Length..], null);
        }

        if (!name.StartsWith("json:", StringComparison.Ordinal))
        {
            return (name, null);
        }

        Dictionary<string, string> options = Flatten(name["json:".Length..]);
        string? format = options.GetValueOrDefault("driver");
        string file = options.GetValueOrDefault("file.filename")
            ?? options.GetValueOrDefault("filename")
            ?? throw new ArgumentException($"Could not open '{name}': A block device must be specified for \"file\"");
        if (options.GetValueOrDefault("file.driver") is { } protocol && protocol != "file")
        {
            throw new NotSupportedException($"Could not open '{name}': the '{protocol}' protocol is not supported by qcow yet");
        }

        return (file, format is "file" ? "raw" : format);
    }

    /// <summary>QEMU's JSON block options as flat dotted keys ("file": {"filename": X} is file.filename=X).</summary>
    private static Dictionary<string, string> Flatten(string json)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(json);
            Add(options, "", document.RootElement);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"Could not parse the JSON options: {e.Message}", e);
        }

        return options;
    }

    private static void Add(Dictionary<string, string> options, string prefix, JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty property in element.EnumerateObject())
            {
                Add(options, prefix + property.Name + (property.Value.ValueKind == JsonValueKind.Object ? "." : ""), property.Value);
            }
        }
        else
        {
            options[prefix] = element.ValueKind == JsonValueKind.String ? element.GetString()! : element.GetRawText();
        }
    }
}
