// What qemu-io's --image-opts and open -o name: the file and driver, from QEMU's key=value options.
// The qcow2 driver's runtime options (cache sizes, overlap checks, discard passing) are taken and
// have no effect here; any other option is refused as QEMU refuses it.
using System;
using System.Collections.Generic;

namespace Qcow.Cli;

internal static class IoImageOptions
{
    private static readonly HashSet<string> s_runtimeOptions = new(StringComparer.Ordinal)
    {
        "cache-size", "l2-cache-size", "l2-cache-entry-size", "refcount-cache-size", "cache-clean-interval",
        "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot", "pass-discard-other", "discard-no-unref",
        "overlap-check", "file.locking", "file.aio", "file.cache.direct", "file.cache.no-flush", "cache.direct", "cache.no-flush",
        "read-only", "auto-read-only", "force-share", "discard", "detect-zeroes", "locking",
    };

    /// <summary>The file to open and its format (null: probe it), from the image name (or, with --image-opts, the options it is) and open's -o options.</summary>
    public static (string File, string? Format) Resolve(string image, IoOpenFlags flags, IReadOnlyList<string> driverOptions)
    {
        var options = new List<string>();
        string? file = null;
        string? format = flags.Format;
        if (flags.ImageOpts)
        {
            options.Add(image);
        }
        else if (image.Length > 0)
        {
            (file, string? named) = ImageName.Resolve(image);
            format = named ?? format;
        }

        options.AddRange(driverOptions);
        foreach (string list in options)
        {
            foreach (string option in list.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = option.IndexOf('=');
                string key = eq < 0 ? option : option[..eq];
                string value = eq < 0 ? "on" : option[(eq + 1)..];
                switch (key)
                {
                    case "driver":
                        // The file protocol alone is the file's bytes: raw.
                        format = value == "file" ? "raw" : value;
                        break;
                    case "file.filename" or "filename":
                        file = value;
                        break;
                    case "file.driver" when value == "file":
                        break;
                    default:
                        if (!s_runtimeOptions.Contains(key) && !key.StartsWith("overlap-check.", StringComparison.Ordinal))
                        {
                            throw new ArgumentException($"Block format '{format ?? "qcow2"}' does not support the option '{key}'");
                        }

                        break;
                }
            }
        }

        return (file ?? throw new ArgumentException("A block device must be specified for \"file\""), format);
    }
}
