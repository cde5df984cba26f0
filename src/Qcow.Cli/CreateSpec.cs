// What -f and -o say an image should be: parsed once, for create, convert and measure alike.
// Options Qcow does not support yet are refused by name, never ignored.
using System;
using System.Collections.Generic;
using System.Globalization;

namespace Qcow.Cli;

internal sealed class CreateSpec
{
    private static readonly string[] s_qcow2Options = ["size", "compat", "backing_file", "backing_fmt", "cluster_size", "refcount_bits", "lazy_refcounts", "compression_type", "preallocation", "extended_l2", "data_file", "data_file_raw"];
    private static readonly string[] s_qcowOptions = ["size", "backing_file", "backing_fmt"];
    private static readonly string[] s_rawOptions = ["size", "preallocation"];

    public QcowCreateOptions Options { get; private init; } = new();

    public bool SizeGiven { get; private init; }

    /// <summary>-o preallocation was given (qemu-img then echoes it, off too).</summary>
    public bool PreallocationGiven { get; private init; }

    /// <summary>The backing format named (-F or backing_fmt), which qemu-img echoes even for qcow, which cannot store it.</summary>
    public string? BackingFormatName { get; private init; }

    /// <summary>Text for -o help.</summary>
    public static string Help(string format) => format switch
    {
        "qcow2" => """
            Supported options:
              backing_file=<str>     - File name of a base image
              backing_fmt=<str>      - Image format of the base image
              cluster_size=<size>    - qcow2 cluster size (default 65536)
              compat=<str>           - Compatibility level (0.10 or 1.1)
              compression_type=<str> - Compression method used for image cluster compression (zlib or zstd)
              data_file=<str>        - File name of an external data file
              data_file_raw=<bool>   - The external data file must stay valid as a raw image
              extended_l2=<bool>     - Extended L2 tables
              lazy_refcounts=<bool>  - Postpone refcount updates
              preallocation=<str>    - Preallocation mode (allowed values: off, metadata, falloc, full)
              refcount_bits=<num>    - Width of a reference count entry in bits
              size=<size>            - Virtual disk size
            """,
        "qcow" => """
            Supported options:
              backing_file=<str>     - File name of a base image
              backing_fmt=<str>      - Image format of the base image
              size=<size>            - Virtual disk size
            """,
        _ => """
            Supported options:
              preallocation=<str>    - Preallocation mode (only off is supported yet)
              size=<size>            - Virtual disk size
            """,
    };

    /// <summary>Splits "a=1,b=2" as QEMU does (",," is a literal comma).</summary>
    public static Dictionary<string, string> ParseOptions(IEnumerable<string> lists)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string list in lists)
        {
            foreach (string item in list.Replace(",,", "\u0001", StringComparison.Ordinal).Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = item.IndexOf('=');
                string key = eq < 0 ? item : item[..eq];
                string value = eq < 0 ? "on" : item[(eq + 1)..].Replace('\u0001', ',');
                options[key] = value;
            }
        }

        return options;
    }

    /// <param name="format">-f or -O.</param>
    /// <param name="o">The -o options.</param>
    /// <param name="backingFile">-b or -B.</param>
    /// <param name="backingFormat">-F.</param>
    /// <param name="size">The size argument, if any.</param>
    /// <param name="path">The image the options are for, named in errors.</param>
    public static CreateSpec From(string format, Dictionary<string, string> o, string? backingFile, string? backingFormat, long? size, string path)
    {
        string[] known = format switch
        {
            "qcow2" => s_qcow2Options,
            "qcow" => s_qcowOptions,
            "raw" => s_rawOptions,
            _ => throw new UsageException($"Unknown file format '{format}'"),
        };
        foreach (string key in o.Keys)
        {
            if (Array.IndexOf(known, key) < 0)
            {
                throw new UsageException($"Invalid parameter '{key}' for format {format}, or not supported by qcow yet");
            }
        }

        string preallocation = o.GetValueOrDefault("preallocation", "off");
        if (preallocation is not ("off" or "metadata" or "falloc" or "full") || (format != "qcow2" && preallocation != "off"))
        {
            throw new UsageException($"preallocation={preallocation} is not supported by qcow for {format}");
        }

        backingFile ??= o.GetValueOrDefault("backing_file");
        backingFormat ??= o.GetValueOrDefault("backing_fmt");
        if (o.TryGetValue("size", out string? sizeText))
        {
            try
            {
                size = Sizes.Parse(sizeText);
            }
            catch (UsageException)
            {
                throw new HintedException(
                    $"{path}: Parameter 'size' expects a non-negative number below 2^64",
                    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n");
            }
        }

        return new CreateSpec
        {
            SizeGiven = size.HasValue,
            BackingFormatName = backingFile is null ? null : backingFormat,
            PreallocationGiven = o.ContainsKey("preallocation"),
            Options = new QcowCreateOptions
            {
                Size = size,
                Format = VerbOptions.FormatNamed(format, path),
                Preallocation = Enum.Parse<QcowPreallocation>(preallocation, ignoreCase: true),
                Compat = o.GetValueOrDefault("compat", "1.1") switch
                {
                    "1.1" or "v3" => QcowCompat.V1_1,
                    "0.10" or "v2" => QcowCompat.V0_10,
                    string other => throw new ArgumentException($"{path}: Invalid compatibility level: '{other}'"),
                },
                ClusterSize = o.TryGetValue("cluster_size", out string? cs) ? checked((int)Sizes.Parse(cs)) : 65536,
                RefcountBits = o.TryGetValue("refcount_bits", out string? rb) ? int.Parse(rb, CultureInfo.InvariantCulture) : 16,
                LazyRefcounts = Bool(o.GetValueOrDefault("lazy_refcounts", "off"), "lazy_refcounts"),
                CompressionType = o.GetValueOrDefault("compression_type", "zlib") switch
                {
                    "zlib" => QcowCompressionType.Zlib,
                    "zstd" => QcowCompressionType.Zstd,
                    string other => throw new UsageException($"Invalid parameter '{other}' for compression_type"),
                },
                BackingFile = backingFile,
                BackingFormat = format == "qcow2" && backingFormat != null ? VerbOptions.FormatNamed(backingFormat, path) : null,
                ExtendedL2 = Bool(o.GetValueOrDefault("extended_l2", "off"), "extended_l2"),
                DataFile = o.GetValueOrDefault("data_file"),
                DataFileRaw = Bool(o.GetValueOrDefault("data_file_raw", "off"), "data_file_raw"),
            },
        };
    }

    /// <summary>The line qemu-img create prints.</summary>
    public string Describe(string path)
    {
        var o = Options;
        string backing = o.BackingFile is null ? "" : $" backing_file={o.BackingFile}" + (BackingFormatName is not { } f ? "" : $" backing_fmt={f}");
        // qemu-img echoes preallocation when it is not off, or when it was given.
        string preallocation = o.Preallocation == QcowPreallocation.Off && !PreallocationGiven ? "" : $" preallocation={o.Preallocation.ToString().ToLowerInvariant()}";
        return o.Format switch
        {
            QcowImageFormat.Qcow2 => $"Formatting '{path}', fmt=qcow2 cluster_size={o.ClusterSize} extended_l2={(o.ExtendedL2 ? "on" : "off")}{preallocation} compression_type={(o.CompressionType == QcowCompressionType.Zstd ? "zstd" : "zlib")} size={o.Size}{(o.Compat == QcowCompat.V1_1 ? "" : " compat=0.10")}{backing}{(o.DataFile is null ? "" : $" data_file={o.DataFile}")}{(o.DataFileRaw ? " data_file_raw=on" : "")} lazy_refcounts={(o.LazyRefcounts ? "on" : "off")} refcount_bits={o.RefcountBits}",
            QcowImageFormat.Qcow => $"Formatting '{path}', fmt=qcow size={o.Size}{backing}",
            _ => $"Formatting '{path}', fmt=raw size={o.Size}{preallocation}",
        };
    }

    private static bool Bool(string value, string key) => value switch
    {
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => throw new UsageException($"Parameter '{key}' expects 'on' or 'off'"),
    };
}
