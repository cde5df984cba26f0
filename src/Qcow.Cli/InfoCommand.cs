// qcow info: qemu-img info's human text and JSON (the shape of qemu-img 7.2).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;

namespace Qcow.Cli;

internal static class InfoCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "f", "U", ["output"], ["force-share", "backing-chain", "image-opts"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        bool json = VerbOptions.Json(opt);

        // As qemu-img info, each layer is opened on its own, its backing file unopened, and a
        // file met twice down the chain is a loop.
        bool chain = opt.Has("backing-chain");
        string path = opt.Positional[0];
        var layers = new List<QcowInfo>();
        using (QcowImage image = VerbOptions.Open(path, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.HeaderCache, openBackingFiles: false), imageOpts: opt.Has("image-opts")))
        {
            layers.Add(image.Info);
        }

        var seen = new HashSet<string>(StringComparer.Ordinal) { Path.GetFullPath(layers[0].Path) };
        while (chain && layers[^1] is { FullBackingFile: { } next } layer)
        {
            if (!seen.Add(Path.GetFullPath(next)))
            {
                throw new InvalidOperationException($"Backing file '{next}' creates an infinite loop.");
            }

            string? format = layer.BackingFormat;
            using QcowImage backing = QcowImage.Open(next, VerbOptions.Reading(opt, next, format, VerbOptions.HeaderCache, openBackingFiles: false));
            layers.Add(backing.Info);
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
    private static string JsonArray(List<QcowInfo> layers)
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
    private static QemuJson Json(QcowInfo f)
    {
        var o = new QemuJson()
            .Add("filename", f.Path)
            .Add("format", VerbOptions.Name(f.Format))
            .Add("dirty-flag", f.Dirty)
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

        if (f.Format == QcowImageFormat.Qcow2)
        {
            o.Add("format-specific", new QemuJson().Add("type", "qcow2").Add("data", FormatSpecificData(f)));
        }

        o.AddIf(f.Encryption != null, "encrypted", true);
        return o;
    }

    /// <summary>QEMU's names for a bitmap's flags.</summary>
    private static List<string> BitmapFlags(QcowBitmapInfo b) =>
        [.. b.InUse ? ["in-use"] : Array.Empty<string>(), .. b.Auto ? ["auto"] : Array.Empty<string>()];

    private static QemuJson SnapshotJson(QcowSnapshotInfo s) => new QemuJson()
        .Add("id", s.Id)
        .Add("name", s.Name)
        .Add("vm-state-size", s.VmStateSize)
        .Add("date-sec", s.DateSeconds)
        .Add("date-nsec", s.DateNanoseconds)
        .Add("vm-clock-sec", s.VmClockNanoseconds / 1_000_000_000)
        .Add("vm-clock-nsec", s.VmClockNanoseconds % 1_000_000_000)
        .AddIf(s.Icount.HasValue, "icount", s.Icount.GetValueOrDefault());

    /// <summary>QEMU's snapshot list: header line, then one line per snapshot (local time, as qemu-img prints it).</summary>
    public static string SnapshotList(IReadOnlyList<QcowSnapshotInfo> snapshots)
    {
        var s = new StringBuilder("Snapshot list:\n");
        s.Append(CultureInfo.InvariantCulture, $"{"ID",-10}{"TAG",-17}{"VM SIZE",8}{"DATE",20}{"VM CLOCK",13}{"ICOUNT",11}\n");
        foreach (QcowSnapshotInfo sn in snapshots)
        {
            string date = DateTimeOffset.FromUnixTimeSeconds(sn.DateSeconds).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            long seconds = sn.VmClockNanoseconds / 1_000_000_000;
            string clock = string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:00}:{seconds / 60 % 60:00}:{seconds % 60:00}.{sn.VmClockNanoseconds / 1_000_000 % 1000:000}");
            string icount = sn.Icount is { } n ? n.ToString(CultureInfo.InvariantCulture) : "";
            s.Append(CultureInfo.InvariantCulture, $"{sn.Id,-9} {sn.Name,-16} {Sizes.Human(sn.VmStateSize),8}{date,20}{clock,13}{icount,11}\n");
        }

        return s.ToString();
    }

    private static string Human(QcowInfo f)
    {
        var s = new StringBuilder();
        s.Append($"image: {f.Path}\n");
        s.Append($"file format: {VerbOptions.Name(f.Format)}\n");
        s.Append($"virtual size: {Sizes.Human(f.VirtualSize)} ({f.VirtualSize} bytes)\n");
        s.Append($"disk size: {Sizes.Human(f.ActualSize)}\n");
        if (f.Encryption != null)
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

        if (f.Format == QcowImageFormat.Qcow2)
        {
            s.Append(FormatSpecific(f));
        }

        return s.ToString();
    }

    /// <summary>The "Format specific information" block that qemu-img info and qemu-io info print: QEMU's dump of the same object the JSON holds.</summary>
    public static string FormatSpecific(QcowInfo f)
    {
        var s = new StringBuilder("Format specific information:\n");
        FormatSpecificData(f).DumpHuman(s, 1);
        return s.ToString();
    }

    /// <summary>qemu-img names the backing format only with a backing file: an empty name is none.</summary>
    private static bool HasBackingFormat(QcowInfo f) => f.BackingFormat != null && !string.IsNullOrEmpty(f.BackingFile);

    /// <summary>qemu-img's ImageInfoSpecificQCow2: optional members only when they hold something.</summary>
    private static QemuJson FormatSpecificData(QcowInfo f)
    {
        bool v3 = f.Version == 3;
        var data = new QemuJson()
            .Add("compat", v3 ? "1.1" : "0.10")
            .AddIf(v3, "lazy-refcounts", f.LazyRefcounts)
            .AddIf(f.Bitmaps.Count > 0, "bitmaps", f.Bitmaps.Select(b => new QemuJson().Add("name", b.Name).Add("granularity", b.Granularity).Add("flags", BitmapFlags(b))).ToList())
            .AddIf(v3, "corrupt", f.Corrupt)
            .Add("refcount-bits", f.RefcountBits);
        if (f.Encryption is { Format: QcowEncryptionFormat.Aes })
        {
            data.Add("encrypt", new QemuJson().Add("format", "aes"));
        }
        else if (f.Encryption?.Luks is { } luks)
        {
            data.Add("encrypt", Luks(luks));
        }

        return data
            .AddIf(f.DataFile != null, "data-file", f.DataFile!)
            .AddIf(f.DataFile != null, "data-file-raw", f.DataFileRaw)
            .AddIf(v3, "extended-l2", f.ExtendedL2)
            .Add("compression-type", f.CompressionType == QcowCompressionType.Zstd ? "zstd" : "zlib");
    }

    /// <summary>QCryptoBlockInfoLUKS: the cipher, the hash, the slots.</summary>
    private static QemuJson Luks(QcowLuksInfo l)
    {
        var luks = new QemuJson()
            .Add("format", "luks")
            .Add("cipher-alg", l.CipherAlgorithm)
            .Add("cipher-mode", l.CipherMode)
            .Add("ivgen-alg", l.IvGenerator)
            .AddIf(l.IvHashAlgorithm != null, "ivgen-hash-alg", l.IvHashAlgorithm ?? "")
            .Add("hash-alg", l.HashAlgorithm)
            .Add("payload-offset", l.PayloadOffset)
            .Add("master-key-iters", l.MasterKeyIterations)
            .Add("uuid", l.Uuid);
        return luks.Add("slots", l.Slots.Select(slot => new QemuJson()
            .Add("active", slot.Active)
            .AddIf(slot.Active, "iters", slot.Iterations)
            .AddIf(slot.Active, "stripes", slot.Stripes)
            .Add("key-offset", slot.KeyOffset)).ToList());
    }
}
