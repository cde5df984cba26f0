// What the verbs share in how they open images and answer: qemu-img's reader (sharing forced by
// -U or --force-share), cache sizes by the work a verb does, and the --output choice.
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.IO;

namespace Qcow.Cli;

internal static class VerbOptions
{
    /// <summary>L2 cache for verbs that walk a whole image: convert, map, compare, measure, dd, bench, io.</summary>
    public const long WalkingCache = 32 << 20;

    /// <summary>L2 cache for verbs that read a header and a few tables: info, explain, create, resize.</summary>
    public const long HeaderCache = 1 << 20;

    /// <summary>A read-only open as qemu-img's verbs make it.</summary>
    public static OpenSettings Reading(GetOpt opt, long cacheBytes, bool openBackingFiles = true) =>
        new(false, false, cacheBytes, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, ForceShare: opt.Has("U") || opt.Has("force-share"), OpenBackingFiles: openBackingFiles);

    /// <summary>True for --output=json, false for human (the default); anything else is a usage error.</summary>
    public static bool Json(GetOpt opt) => (opt.Value("output") ?? "human") switch
    {
        "json" => true,
        "human" => false,
        _ => throw new UsageException("--output must be human or json"),
    };
}
