// qcow info: qemu-img info's human text and JSON (the shape of qemu-img 7.2).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.FSharp.Core;
using Qcow.Format;
using Qcow.IO;

namespace Qcow.Cli;

internal static class InfoCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "f", "U", ["output"], ["force-share", "backing-chain"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        bool json = VerbOptions.Json(opt);

        // As qemu-img info, backing files are opened only to describe them.
        bool chain = opt.Has("backing-chain");
        var settings = VerbOptions.Reading(opt, VerbOptions.HeaderCache, openBackingFiles: chain);
        using IBlockDevice device = ImageOpener.Open(opt.Positional[0], opt.Value("f"), settings);
        var layers = new List<ImageFacts>();
        for (IBlockDevice? layer = device; layer != null; layer = chain ? (layer as QcowDevice)?.Backing : null)
        {
            layers.Add(ImageFacts.Of(layer.Path, layer));
        }

        if (json)
        {
            stdout.WriteLine(chain ? JsonArray(layers) : Json(layers[0]).ToString());
        }
        else
        {
            stdout.Write(string.Join("\n", layers.ConvertAll(Human)));
        }

        return 0;
    }

    /// <summary>qemu-img info --backing-chain --output=json: a list of the layers' objects.</summary>
    private static string JsonArray(List<ImageFacts> layers)
    {
        var lines = new StringBuilder("[\n");
        for (int i = 0; i < layers.Count; i++)
        {
            foreach (string line in Json(layers[i]).ToString().Split('\n'))
            {
                lines.Append("    ").Append(line).Append('\n');
            }

            lines.Length--;
            lines.Append(i + 1 < layers.Count ? ",\n" : "\n");
        }

        return lines.Append(']').ToString();
    }

    /// <summary>qemu-img's ImageInfo object; optional members only when they hold something.</summary>
    public static QemuJson Json(ImageFacts f)
    {
        var o = new QemuJson()
            .Add("filename", f.Path)
            .Add("format", f.Format)
            .Add("dirty-flag", f.Header != null && HeaderModule.isDirty(f.Header))
            .Add("actual-size", f.ActualSize)
            .Add("virtual-size", f.VirtualSize)
            .AddIf(f.ClusterSize > 0, "cluster-size", f.ClusterSize);
        if (f.BackingFile != null)
        {
            o.Add("backing-filename", f.BackingFile).Add("full-backing-filename", f.FullBackingFile!);
        }

        o.AddIf(HasBackingFormat(f), "backing-filename-format", f.BackingFormat!);
        if (f.Snapshots.Count > 0)
        {
            o.Add("snapshots", f.Snapshots.Select(SnapshotJson).ToList());
        }

        if (f.Header is { } h)
        {
            o.Add("format-specific", new QemuJson().Add("type", "qcow2").Add("data", FormatSpecificData(h, f.Bitmaps, f.Luks)));
        }

        o.AddIf(f.Encrypted, "encrypted", true);
        return o;
    }

    private static string? DataFile(Header h) => OptionModule.ToObj(HeaderModule.externalDataFile(h));

    /// <summary>QEMU's names for a bitmap's flags: bit 0 in-use, bit 1 auto.</summary>
    private static List<string> BitmapFlags(Bitmap b) =>
        [.. (b.Flags & 1) != 0 ? ["in-use"] : Array.Empty<string>(), .. (b.Flags & 2) != 0 ? ["auto"] : Array.Empty<string>()];

    private static QemuJson SnapshotJson(Snapshot s)
    {
        ulong? icount = OptionModule.ToNullable(SnapshotModule.icount(s));
        return new QemuJson()
            .Add("id", s.Id)
            .Add("name", s.Name)
            .Add("vm-state-size", (long)s.VmStateSize)
            .Add("date-sec", (long)s.DateSeconds)
            .Add("date-nsec", (long)s.DateNanoseconds)
            .Add("vm-clock-sec", (long)(s.VmClockNanoseconds / 1_000_000_000))
            .Add("vm-clock-nsec", (long)(s.VmClockNanoseconds % 1_000_000_000))
            .AddIf(icount.HasValue, "icount", (long)icount.GetValueOrDefault());
    }

    /// <summary>QEMU's snapshot list: header line, then one line per snapshot (local time, as qemu-img prints it).</summary>
    private static string SnapshotList(IReadOnlyList<Snapshot> snapshots)
    {
        var s = new StringBuilder("Snapshot list:\n");
        s.Append(CultureInfo.InvariantCulture, $"{"ID",-10}{"TAG",-17}{"VM SIZE",8}{"DATE",20}{"VM CLOCK",13}{"ICOUNT",11}\n");
        foreach (Snapshot sn in snapshots)
        {
            string date = DateTimeOffset.FromUnixTimeSeconds(sn.DateSeconds).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            ulong seconds = sn.VmClockNanoseconds / 1_000_000_000;
            string clock = string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:00}:{seconds / 60 % 60:00}:{seconds % 60:00}.{sn.VmClockNanoseconds / 1_000_000 % 1000:000}");
            string icount = OptionModule.ToNullable(SnapshotModule.icount(sn)) is { } n ? n.ToString(CultureInfo.InvariantCulture) : "";
            s.Append(CultureInfo.InvariantCulture, $"{sn.Id,-9} {sn.Name,-16} {Sizes.Human((long)sn.VmStateSize),8}{date,20}{clock,13}{icount,11}\n");
        }

        return s.ToString();
    }

    public static string Human(ImageFacts f)
    {
        var s = new StringBuilder();
        s.Append($"image: {f.Path}\n");
        s.Append($"file format: {f.Format}\n");
        s.Append($"virtual size: {Sizes.Human(f.VirtualSize)} ({f.VirtualSize} bytes)\n");
        s.Append($"disk size: {Sizes.Human(f.ActualSize)}\n");
        if (f.Encrypted)
        {
            s.Append("encrypted: yes\n");
        }

        if (f.ClusterSize > 0)
        {
            s.Append($"cluster_size: {f.ClusterSize}\n");
        }

        if (f.BackingFile != null)
        {
            s.Append($"backing file: {f.BackingFile}");
            s.Append(f.FullBackingFile != f.BackingFile ? $" (actual path: {f.FullBackingFile})\n" : "\n");
        }

        if (HasBackingFormat(f))
        {
            s.Append($"backing file format: {f.BackingFormat}\n");
        }

        if (f.Snapshots.Count > 0)
        {
            s.Append(SnapshotList(f.Snapshots));
        }

        if (f.Header != null)
        {
            s.Append(FormatSpecific(f.Header, f.Bitmaps, f.Luks));
        }

        return s.ToString();
    }

    /// <summary>The "Format specific information" block that qemu-img info and qemu-io info print: QEMU's dump of the same object the JSON holds.</summary>
    public static string FormatSpecific(Header h, IReadOnlyList<Bitmap> bitmaps, LuksHeader? luks)
    {
        var s = new StringBuilder("Format specific information:\n");
        FormatSpecificData(h, bitmaps, luks).DumpHuman(s, 1);
        return s.ToString();
    }

    /// <summary>qemu-img's ImageInfoSpecificQCow2: optional members only when they hold something.</summary>
    /// <summary>qemu-img names the backing format only with a backing file: an empty name is none.</summary>
    private static bool HasBackingFormat(ImageFacts f) => f.BackingFormat != null && !string.IsNullOrEmpty(f.BackingFile);

    private static QemuJson FormatSpecificData(Header h, IReadOnlyList<Bitmap> bitmaps, LuksHeader? luks)
    {
        var data = new QemuJson()
            .Add("compat", h.Version == 3 ? "1.1" : "0.10")
            .AddIf(h.Version == 3, "lazy-refcounts", HeaderModule.hasLazyRefcounts(h))
            .AddIf(bitmaps.Count > 0, "bitmaps", bitmaps.Select(b => new QemuJson().Add("name", b.Name).Add("granularity", 1L << b.GranularityBits).Add("flags", BitmapFlags(b))).ToList())
            .AddIf(h.Version == 3, "corrupt", HeaderModule.isCorrupt(h))
            .Add("refcount-bits", 1 << h.RefcountOrder);
        if (h.CryptMethod == 1)
        {
            data.Add("encrypt", new QemuJson().Add("format", "aes"));
        }
        else if (luks != null)
        {
            data.Add("encrypt", Luks(luks));
        }

        return data
            .AddIf(DataFile(h) != null, "data-file", DataFile(h)!)
            .AddIf(DataFile(h) != null, "data-file-raw", (h.AutoclearFeatures & HeaderModule.RawExternalDataBit) != 0)
            .AddIf(h.Version == 3, "extended-l2", (h.IncompatibleFeatures & HeaderModule.ExtendedL2Bit) != 0)
            .Add("compression-type", h.CompressionType == 1 ? "zstd" : "zlib");
    }

    /// <summary>QCryptoBlockInfoLUKS: the cipher as QEMU names it ("aes-256", mode "xts", IV generator "plain64"), the hash, the slots.</summary>
    private static QemuJson Luks(LuksHeader l)
    {
        string[] mode = l.CipherMode.Split('-', 2);
        string[] ivgen = (mode.Length > 1 ? mode[1] : "").Split(':', 2);
        long keyBits = (mode[0] == "xts" ? l.KeyBytes / 2 : l.KeyBytes) * 8L;
        var luks = new QemuJson()
            .Add("format", "luks")
            .Add("cipher-alg", $"{l.CipherName}-{keyBits}")
            .Add("cipher-mode", mode[0])
            .Add("ivgen-alg", ivgen[0])
            .AddIf(ivgen.Length > 1, "ivgen-hash-alg", ivgen.Length > 1 ? ivgen[1] : "")
            .Add("hash-alg", l.HashSpec)
            .Add("payload-offset", l.PayloadOffset)
            .Add("master-key-iters", (long)l.MasterKeyIterations)
            .Add("uuid", l.Uuid);
        return luks.Add("slots", l.Slots.Select(slot => new QemuJson()
            .Add("active", slot.Active)
            .AddIf(slot.Active, "iters", (long)slot.Iterations)
            .AddIf(slot.Active, "stripes", (long)slot.Stripes)
            .Add("key-offset", slot.KeyOffset)).ToList());
    }
}

/// <summary>What info reports of one image.</summary>
internal sealed record ImageFacts(string Path, string Format, long VirtualSize, int ClusterSize, long ActualSize, Header? Header, string? BackingFile, string? FullBackingFile, string? BackingFormat, IReadOnlyList<Snapshot> Snapshots, IReadOnlyList<Bitmap> Bitmaps, bool Encrypted = false, LuksHeader? Luks = null)
{
    public static ImageFacts Of(string path, IBlockDevice device)
    {
        long actual = FileStorage.AllocatedBytesOf(path);
        return device is QcowDevice q
            ? new ImageFacts(path, q.FormatName, q.Length, q.Layout.ClusterSize, actual, q.Header, q.BackingFileName, q.BackingFileName is null ? null : ImageOpener.ResolveBacking(path, q.BackingFileName), q.BackingFormat, q.Snapshots, q.ReadBitmaps().Bitmaps, q.IsEncrypted, q.ReadLuksHeader())
            : new ImageFacts(path, device.FormatName, device.Length, 0, actual, null, null, null, null, [], []);
    }
}
