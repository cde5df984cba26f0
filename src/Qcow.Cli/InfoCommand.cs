// qcow info: qemu-img info's human text and JSON (the shape of qemu-img 7.2).
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Format;
using Qcow.IO;

namespace Qcow.Cli;

internal static class InfoCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "f", "U", ["output"], ["force-share"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        string path = opt.Positional[0];
        var settings = new OpenSettings(false, false, 1 << 20, NullLoggerFactory.Instance, ReferencedFilePolicy.Default, ForceShare: opt.Has("U") || opt.Has("force-share"));
        using IBlockDevice device = ImageOpener.Open(path, opt.Value("f"), settings);
        ImageFacts facts = ImageFacts.Of(path, device);
        switch (opt.Value("output") ?? "human")
        {
            case "json":
                stdout.WriteLine(Json(facts));
                break;
            case "human":
                stdout.Write(Human(facts));
                break;
            default:
                throw new UsageException($"--output must be human or json");
        }

        return 0;
    }

    public static string Json(ImageFacts f)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, IndentSize = 4 }))
        {
            w.WriteStartObject();
            if (f.BackingFormat != null)
            {
                w.WriteString("backing-filename-format", f.BackingFormat);
            }

            w.WriteNumber("virtual-size", f.VirtualSize);
            w.WriteString("filename", f.Path);
            if (f.ClusterSize > 0)
            {
                w.WriteNumber("cluster-size", f.ClusterSize);
            }

            w.WriteString("format", f.Format);
            w.WriteNumber("actual-size", f.ActualSize);
            if (f.Header != null)
            {
                Header h = f.Header;
                w.WriteStartObject("format-specific");
                w.WriteString("type", "qcow2");
                w.WriteStartObject("data");
                w.WriteString("compat", h.Version == 3 ? "1.1" : "0.10");
                w.WriteString("compression-type", h.CompressionType == 1 ? "zstd" : "zlib");
                if (h.Version == 3)
                {
                    w.WriteBoolean("lazy-refcounts", HeaderModule.hasLazyRefcounts(h));
                }

                w.WriteNumber("refcount-bits", 1 << h.RefcountOrder);
                if (h.Version == 3)
                {
                    w.WriteBoolean("corrupt", HeaderModule.isCorrupt(h));
                    w.WriteBoolean("extended-l2", (h.IncompatibleFeatures & HeaderModule.ExtendedL2Bit) != 0);
                }

                w.WriteEndObject();
                w.WriteEndObject();
            }

            if (f.BackingFile != null)
            {
                w.WriteString("full-backing-filename", f.FullBackingFile);
                w.WriteString("backing-filename", f.BackingFile);
            }

            w.WriteBoolean("dirty-flag", f.Header != null && HeaderModule.isDirty(f.Header));
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static string Human(ImageFacts f)
    {
        var s = new StringBuilder();
        s.Append($"image: {f.Path}\n");
        s.Append($"file format: {f.Format}\n");
        s.Append($"virtual size: {Sizes.Human(f.VirtualSize)} ({f.VirtualSize} bytes)\n");
        s.Append($"disk size: {Sizes.Human(f.ActualSize)}\n");
        if (f.ClusterSize > 0)
        {
            s.Append($"cluster_size: {f.ClusterSize}\n");
        }

        if (f.BackingFile != null)
        {
            s.Append($"backing file: {f.BackingFile}");
            s.Append(f.FullBackingFile != f.BackingFile ? $" (actual path: {f.FullBackingFile})\n" : "\n");
        }

        if (f.BackingFormat != null)
        {
            s.Append($"backing file format: {f.BackingFormat}\n");
        }

        if (f.Header != null)
        {
            s.Append(FormatSpecific(f.Header));
        }

        return s.ToString();
    }

    /// <summary>The "Format specific information" block that qemu-img info and qemu-io info print.</summary>
    public static string FormatSpecific(Header h)
    {
        var s = new StringBuilder();
        s.Append("Format specific information:\n");
        s.Append($"    compat: {(h.Version == 3 ? "1.1" : "0.10")}\n");
        s.Append($"    compression type: {(h.CompressionType == 1 ? "zstd" : "zlib")}\n");
        if (h.Version == 3)
        {
            s.Append($"    lazy refcounts: {(HeaderModule.hasLazyRefcounts(h) ? "true" : "false")}\n");
        }

        s.Append($"    refcount bits: {1 << h.RefcountOrder}\n");
        if (h.Version == 3)
        {
            s.Append($"    corrupt: {(HeaderModule.isCorrupt(h) ? "true" : "false")}\n");
            s.Append($"    extended l2: {((h.IncompatibleFeatures & HeaderModule.ExtendedL2Bit) != 0 ? "true" : "false")}\n");
        }

        return s.ToString();
    }
}

/// <summary>What info reports of one image.</summary>
internal sealed record ImageFacts(string Path, string Format, long VirtualSize, int ClusterSize, long ActualSize, Header? Header, string? BackingFile, string? FullBackingFile, string? BackingFormat)
{
    public static ImageFacts Of(string path, IBlockDevice device)
    {
        long actual = FileStorage.AllocatedBytesOf(path);
        return device is QcowDevice q
            ? new ImageFacts(path, q.FormatName, q.Length, q.Layout.ClusterSize, actual, q.Header, q.BackingFileName, q.BackingFileName is null ? null : ImageOpener.ResolveBacking(path, q.BackingFileName), q.BackingFormat)
            : new ImageFacts(path, device.FormatName, device.Length, 0, actual, null, null, null, null);
    }
}
