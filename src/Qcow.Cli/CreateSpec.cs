// What -f and -o say an image should be: parsed once, for create and convert alike. Options
// Qcow does not support yet are refused by name, never ignored.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Qcow.IO;

namespace Qcow.Cli;

internal sealed class CreateSpec
{
    private static readonly string[] s_qcow2Options = ["size", "compat", "backing_file", "backing_fmt", "cluster_size", "refcount_bits", "lazy_refcounts", "compression_type", "preallocation", "extended_l2", "data_file", "data_file_raw"];
    private static readonly string[] s_qcowOptions = ["size", "backing_file", "backing_fmt"];
    private static readonly string[] s_rawOptions = ["size", "preallocation"];

    public string Format { get; private init; } = "raw";

    public QcowCreateOptions Options { get; private init; } = new();

    public bool SizeGiven { get; private init; }

    /// <summary>qemu-img's preallocation mode for qcow2: off, metadata, falloc or full.</summary>
    public string Preallocation { get; private init; } = "off";

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

    public static CreateSpec From(string format, Dictionary<string, string> o, string? backingFile, string? backingFormat, long? size)
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
            size = Sizes.Parse(sizeText);
        }

        return new CreateSpec
        {
            Format = format,
            Preallocation = preallocation,
            SizeGiven = size.HasValue,
            Options = new QcowCreateOptions
            {
                Size = size ?? 0,
                Format = format == "qcow" ? QcowImageFormat.Qcow : QcowImageFormat.Qcow2,
                Compat = o.GetValueOrDefault("compat", "1.1"),
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
                BackingFormat = format == "qcow2" ? backingFormat : null,
                ExtendedL2 = Bool(o.GetValueOrDefault("extended_l2", "off"), "extended_l2"),
                DataFile = o.GetValueOrDefault("data_file"),
                DataFileRaw = Bool(o.GetValueOrDefault("data_file_raw", "off"), "data_file_raw"),
            },
        };
    }

    /// <summary>Creates the image file.</summary>
    public void Create(string path)
    {
        ulong size = checked(((ulong)(Options.Size ?? 0) + 511) & ~511UL);
        switch (Format)
        {
            case "raw":
                ImageCreator.CreateRaw(path, (long)size);
                break;
            case "qcow":
                ImageCreator.CreateQcowV1(path, size, Options.BackingFile);
                break;
            default:
                ImageCreator.CreateQcow2(path, QcowImage.Qcow2Options(Options, size), Preallocation);
                break;
        }
    }

    /// <summary>The line qemu-img create prints.</summary>
    public string Describe(string path)
    {
        var o = Options;
        string backing = o.BackingFile is null ? "" : $" backing_file={o.BackingFile}" + (o.BackingFormat is null ? "" : $" backing_fmt={o.BackingFormat}");
        return Format switch
        {
            "qcow2" => $"Formatting '{path}', fmt=qcow2 cluster_size={o.ClusterSize} extended_l2={(o.ExtendedL2 ? "on" : "off")}{(Preallocation == "off" ? "" : $" preallocation={Preallocation}")} compression_type={(o.CompressionType == QcowCompressionType.Zstd ? "zstd" : "zlib")} size={o.Size}{(o.Compat == "1.1" ? "" : $" compat={o.Compat}")}{backing}{(o.DataFile is null ? "" : $" data_file={o.DataFile}")}{(o.DataFileRaw ? " data_file_raw=on" : "")} lazy_refcounts={(o.LazyRefcounts ? "on" : "off")} refcount_bits={o.RefcountBits}",
            "qcow" => $"Formatting '{path}', fmt=qcow size={o.Size}{backing}",
            _ => $"Formatting '{path}', fmt=raw size={o.Size}",
        };
    }

    private static void Refuse(Dictionary<string, string> o, string key, string supported)
    {
        if (o.TryGetValue(key, out string? value) && value != supported)
        {
            throw new UsageException($"{key}={value} is not supported by qcow yet");
        }
    }

    private static bool Bool(string value, string key) => value switch
    {
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => throw new UsageException($"Parameter '{key}' expects 'on' or 'off'"),
    };
}
