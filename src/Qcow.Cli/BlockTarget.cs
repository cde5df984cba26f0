// What a user's description of an image opens: the file under it all, the formats layered on
// that file (outermost first; null: whatever it probes as), and the protocol driver the file was
// named with. A format over a format is QEMU's nesting: an image stored in another's virtual disk.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

/// <param name="File">The file the bytes come from.</param>
/// <param name="Formats">The formats over it, outermost first; empty: the file's bytes as they are (raw).</param>
/// <param name="Protocol">The protocol driver named for the file (file, host_device, host_cdrom), or null when none was.</param>
/// <param name="NoBacking">"backing": null: the top image's backing file is not opened.</param>
/// <param name="NullSize">For the null drivers (null-co, null-aio): the size of the disk of zeros they are.</param>
/// <param name="CompressWrites">QEMU's compress filter on top: every write is written compressed, whole clusters at a time.</param>
/// <param name="Limits">blkdebug's request limits, when it stands on top; null otherwise.</param>
/// <param name="Faults">blkdebug's rules, when it stands under the innermost format as its file: injected into that image's file.</param>
internal sealed record BlockTarget(string File, IReadOnlyList<string?> Formats, string? Protocol, bool NoBacking = false, long NullSize = 0, bool CompressWrites = false, RequestLimits? Limits = null, QcowFaultInjection? Faults = null)
{
    /// <summary>The top format's qcow2 cache options.</summary>
    public Qcow2CacheOptions Cache { get; init; } = Qcow2CacheOptions.None;

    /// <summary>backing.driver: the top image's backing file's format, instead of the recorded one.</summary>
    public string? BackingFormat { get; init; }

    /// <summary>The top image's format as named (null: probe it).</summary>
    public string? Format => Formats.Count > 0 ? Formats[0] : "raw";

    /// <summary>
    /// Opens the layers from the file up, each with the options <paramref name="options"/> makes
    /// for the file and the layer's format; an outer layer owns the one below it.
    /// </summary>
    public QcowImage Open(Func<string, string?, QcowOpenOptions> options)
    {
        QcowImage image = OpenLayers(options);
        if (image.Info.Format == QcowImageFormat.Qcow2 && Cache.Refusal(image.Info.ClusterSize) is { } refusal)
        {
            image.Dispose();
            throw new ArgumentException(refusal);
        }

        return image;
    }

    private QcowImage OpenLayers(Func<string, string?, QcowOpenOptions> options)
    {
        if (Protocol is "null-co" or "null-aio")
        {
            return Formats is [] or [null] or ["raw"]
                ? QcowImage.Open(new NullStream(NullSize), options(File, "raw") with { Format = QcowImageFormat.Raw }, File)
                : throw new NotSupportedException($"a format over the '{Protocol}' driver is not supported by qcow yet");
        }

        QcowOpenOptions top = options(File, Format);
        if (Cache.L2 is > 0 and var l2)
        {
            top = top with { CacheSize = l2 };
        }

        if (BackingFormat is { } backing)
        {
            top = top with { BackingFormat = VerbOptions.FormatNamed(backing, File) };
        }

        CheckProtocol(top.ReadOnly);
        if (Formats.Count <= 1)
        {
            return QcowImage.Open(File, (NoBacking ? top with { OpenBackingFiles = false } : top) with { FaultInjection = Faults });
        }

        QcowImage image = QcowImage.Open(File, options(File, Formats[^1]) with { FaultInjection = Faults });
        try
        {
            for (int i = Formats.Count - 2; i >= 0; i--)
            {
                QcowOpenOptions layer = options(File, Formats[i] ?? throw new ArgumentException("A format over another format must be named"));
                image = QcowImage.Open(image.AsStream(closeImage: true), i == 0 && NoBacking ? layer with { OpenBackingFiles = false } : layer, File);
            }
        }
        catch
        {
            image.Dispose();
            throw;
        }

        return image;
    }

    /// <summary>
    /// As QEMU's protocol drivers refuse them: 'file' wants a regular file, host_device and
    /// host_cdrom a character or block device; a directory cannot be opened for writing at all.
    /// </summary>
    private void CheckProtocol(bool readOnly)
    {
        FileKind kind = FileKinds.Of(File);
        if (kind == FileKind.Directory && !readOnly)
        {
            throw new IOException($"Could not open '{File}': Is a directory");
        }

        if (Protocol == "file" && kind is not (FileKind.Regular or FileKind.Missing))
        {
            throw new IOException($"'file' driver requires '{File}' to be a regular file");
        }

        if (Protocol is "host_device" or "host_cdrom" && kind is not (FileKind.Device or FileKind.Missing))
        {
            throw new IOException($"'{Protocol}' driver requires '{File}' to be either a character or block device");
        }
    }
}
