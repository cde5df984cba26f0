// qcow amend: qemu-img amend's -o compat=, lazy_refcounts=, refcount_bits= on a closed image;
// creation-only options are refused as qemu-img refuses them, the rest Qcow does not change yet
// by name.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Qcow.Cli;

internal static class AmendCommand
{
    private static readonly string[] s_creationOnly = ["cluster_size", "preallocation", "extended_l2", "compression_type"];

    public static int Run(IReadOnlyList<string> args)
    {
        GetOpt opt = GetOpt.Parse(args, "fot", "pq", [], ["force"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        Dictionary<string, string> o = CreateSpec.ParseOptions(opt.Values("o"));
        if (o.Count == 0)
        {
            throw new UsageException("Must specify options (-o)");
        }

        string path = opt.Positional[0];
        QcowImageFormat format = VerbOptions.Format(path, opt.Value("f"));
        if (format != QcowImageFormat.Qcow2)
        {
            throw new InvalidOperationException($"Format driver '{VerbOptions.Name(format)}' does not support option amendment");
        }

        QcowCompat? compat = null;
        bool? lazy = null;
        int? refcountBits = null;
        foreach ((string key, string value) in o)
        {
            switch (key)
            {
                case "compat":
                    compat = value switch
                    {
                        "0.10" or "v2" => QcowCompat.V0_10,
                        "1.1" or "v3" => QcowCompat.V1_1,
                        _ => throw new UsageException($"Invalid compatibility level: '{value}'"),
                    };
                    break;
                case "lazy_refcounts":
                    lazy = value is "on" or "true" or "yes" ? true : value is "off" or "false" or "no" ? false : throw new UsageException($"Parameter 'lazy_refcounts' expects 'on' or 'off'");
                    break;
                case "refcount_bits":
                    int bits = int.Parse(value, CultureInfo.InvariantCulture);
                    refcountBits = bits is >= 1 and <= 64 && int.IsPow2(bits)
                        ? bits
                        : throw new UsageException("Refcount width must be a power of two and may not exceed 64 bits");
                    break;
                case var k when Array.IndexOf(s_creationOnly, k) >= 0:
                    throw new UsageException($"Invalid parameter '{k}'\nThis option is only supported for image creation");
                default:
                    throw new UsageException($"Invalid parameter '{key}', or not supported by qcow yet");
            }
        }

        QcowImage.Amend(path, new QcowAmendOptions { Compat = compat, LazyRefcounts = lazy, RefcountBits = refcountBits });
        return 0;
    }
}
