// What the verbs share in how they open images and answer: qemu-img's reader (sharing forced by
// -U or --force-share), the format by -f or by probing, cache sizes by the work a verb does, and
// the --output choice.
using System;
using System.IO;

namespace Qcow.Cli;

internal static class VerbOptions
{
    /// <summary>
    /// Opens an image a user named (a path, file:PATH or json:{...}) for a verb, with the options
    /// made for the file it names and the format given (-f) or named in its JSON; a failure says,
    /// as qemu-img says it, "Could not open 'NAME': " and why.
    /// </summary>
    public static QcowImage Open(string name, string? format, Func<string, string?, QcowOpenOptions> options, bool imageOpts = false)
    {
        if (imageOpts && format is not null)
        {
            throw new UsageException("--image-opts and --format are mutually exclusive");
        }

        try
        {
            return BlockOptions.Resolve(name, format, imageOpts, []).Open(options);
        }
        catch (QcowFormatException e)
        {
            throw new IOException($"Could not open '{name}': {e.Detail}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not open '{name}': {SystemErrors.Text(e.Message)}", e);
        }
    }

    /// <summary>L2 cache for verbs that walk a whole image: convert, map, compare, measure, dd, bench, io.</summary>
    public const long WalkingCache = 32 << 20;

    /// <summary>L2 cache for verbs that read a header and a few tables: info, explain, create, resize.</summary>
    public const long HeaderCache = 1 << 20;

    /// <summary>A read-only open as qemu-img's verbs make it: the format named, or probed as qemu-img probes.</summary>
    public static QcowOpenOptions Reading(GetOpt opt, string path, string? format, long cacheBytes, bool openBackingFiles = true, SnapshotArgument? snapshot = null) => new()
    {
        ReadOnly = true,
        Format = Format(path, format),
        ForceShare = opt.Has("U") || opt.Has("force-share"),
        CacheSize = cacheBytes,
        OpenBackingFiles = openBackingFiles,
        Snapshot = snapshot?.IdOrName,
        SnapshotId = snapshot?.Id,
        SnapshotName = snapshot?.Name,
    };

    /// <summary>The format -f (or -O, -F) names, or without one the format the file probes as.</summary>
    public static QcowImageFormat Format(string path, string? name) => name is null ? QcowImage.Probe(path) : FormatNamed(name, path);

    /// <summary>A format a user named; a name Qcow does not know is refused naming the image, as qemu-img refuses it.</summary>
    public static QcowImageFormat FormatNamed(string name, string path)
    {
        try
        {
            return QcowImage.ParseFormat(name);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{path}: {e.Message}", e);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>qemu-img's name of a format.</summary>
    public static string Name(QcowImageFormat format) => format.ToString().ToLowerInvariant();

    /// <summary>True for --output=json, false for human (the default); anything else is a usage error.</summary>
    public static bool Json(GetOpt opt) => (opt.Value("output") ?? "human") switch
    {
        "json" => true,
        "human" => false,
        _ => throw new UsageException("--output must be human or json"),
    };
}
