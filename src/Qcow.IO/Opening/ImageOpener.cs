// Opening any image by path: format probing as qemu-img does it, and backing chains resolved
// through the referenced-file policy.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using Microsoft.Extensions.Logging;
using Qcow.Format;

namespace Qcow.IO;

/// <param name="Writable">Open the top image for writing (backing files are always read-only).</param>
/// <param name="ForceCorrupt">Open read-write even when marked corrupt.</param>
/// <param name="CacheBytes">L2 cache size per image.</param>
/// <param name="LoggerFactory">Where images log.</param>
/// <param name="Policy">Which referenced files may be opened.</param>
/// <param name="IgnoreFlushes">QEMU's cache=unsafe: writes reach the file, flushes never force them to disk.</param>
/// <param name="ForceShare">qemu-img's -U: a read-only open that lets others write the image meanwhile.</param>
/// <param name="OpenBackingFiles">False leaves backing files unopened, for reading headers only (qemu-img info).</param>
/// <param name="PassDiscards">Clusters a discard frees have their space given back to the file system.</param>
/// <param name="FaultInjection">Faults to inject into the top image's file, as QEMU's blkdebug; null for none.</param>
/// <param name="BackingFormat">The top image's backing file's format, instead of the one the image records; null: the recorded one.</param>
/// <param name="Snapshot">The internal snapshot the top image is read at; null for its active state.</param>
internal sealed record OpenSettings(bool Writable, bool ForceCorrupt, long CacheBytes, ILoggerFactory LoggerFactory, ReferencedFilePolicy Policy, bool IgnoreFlushes = false, bool ForceShare = false, bool OpenBackingFiles = true, bool PassDiscards = false, QcowFaultInjection? FaultInjection = null, string? BackingFormat = null, SnapshotChoice? Snapshot = null);

internal static class ImageOpener
{
    /// <summary>A chain deeper than this is taken for a loop.</summary>
    private const int MaxChainDepth = 256;

    /// <summary>Opens an image; <paramref name="format"/> null means probe.</summary>
    public static IBlockDevice Open(string path, string? format, OpenSettings settings) =>
        Open(path, format, settings, new HashSet<string>(StringComparer.Ordinal));

    /// <summary>
    /// Opens a qcow or qcow2 image without probing, so that a file that is not one gets the
    /// header's own error (wrong magic, unsupported version) rather than being taken for raw.
    /// </summary>
    public static QcowDevice OpenQcow(string path, OpenSettings settings) =>
        (QcowDevice)Open(path, "qcow*", settings, new HashSet<string>(StringComparer.Ordinal));

    /// <summary>The format qemu-img would probe the file as.</summary>
    public static string Probe(string path)
    {
        using FileStorage storage = FileStorage.Open(path, writable: false, shareAll: true);
        return Probe(storage);
    }

    /// <summary>
    /// qemu-img's probe: the qcow magic with version 1 is qcow, with any other version qcow2 (whose
    /// header then names the unsupported version); another format's magic gives that format's name;
    /// anything else is raw. A file in another format throws, naming it: Qcow does not read it.
    /// </summary>
    public static string Probe(IStorage storage)
    {
        byte[] head = new byte[Qcow.Format.Probe.HeadLength];
        int available = storage.Read(0, head);
        Qcow.Format.Probe.ProbedFormat probed = Qcow.Format.Probe.format(head.AsSpan(0, available).ToArray());
        return probed switch
        {
            Qcow.Format.Probe.ProbedFormat.Foreign foreign => throw FormatErrors.ToException(FormatError.NewForeignFormat(foreign.name), storage.Path),
            _ when probed.IsQcow => "qcow",
            _ when probed.IsQcow2 => "qcow2",
            _ => "raw",
        };
    }

    /// <summary>The formats Qcow reads ("qcow*" is either qcow or qcow2, whichever the header says).</summary>
    private static bool IsReadable(string format) => format is "raw" or "qcow" or "qcow2" or "qcow*";

    /// <summary>A format qemu-img knows and Qcow does not read: named as such, rather than as unknown.</summary>
    public static bool IsForeign(string format) => ForeignFormats.Contains(format);

    /// <summary>The other formats qemu-img knows.</summary>
    private static readonly HashSet<string> ForeignFormats = new(StringComparer.Ordinal)
    {
        "vmdk", "vdi", "vpc", "vhdx", "qed", "luks", "parallels", "bochs", "cloop", "dmg", "vvfat",
    };

    /// <summary>
    /// Opens an image over storage the caller opened (a stream); the device owns it from here.
    /// <paramref name="format"/> null means qcow or qcow2, whichever the header says.
    /// </summary>
    public static IBlockDevice Open(IStorage storage, string? format, OpenSettings settings) =>
        Open(storage.Path, format ?? "qcow*", settings, new HashSet<string>(StringComparer.Ordinal), storage);

    /// <summary>
    /// Opens a qcow or qcow2 image over a file already open (an offline change holds one handle,
    /// and so one lock, from start to end); disposing the device leaves the file open.
    /// </summary>
    public static QcowDevice OpenQcow(IStorage heldFile, OpenSettings settings) =>
        (QcowDevice)Open(heldFile.Path, "qcow*", settings, new HashSet<string>(StringComparer.Ordinal), new BorrowedStorage(heldFile));

    private static IBlockDevice Open(string path, string? format, OpenSettings settings, HashSet<string> chain, IStorage? heldFile = null)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!chain.Add(full) || chain.Count > MaxChainDepth)
        {
            throw FormatErrors.ToException(FormatError.NewInconsistent(Structure.BackingFileName, 8, "the backing chain loops back on itself or is too deep"), path);
        }

        IStorage storage = heldFile ?? FileStorage.Open(path, settings.Writable, settings.IgnoreFlushes, settings.ForceShare);
        if (settings.FaultInjection is { } faults)
        {
            storage = new FaultInjectingStorage(storage, faults);
        }

        try
        {
            string actual = format ?? Probe(storage);
            if (!IsReadable(actual))
            {
                throw ForeignFormats.Contains(actual)
                    ? FormatErrors.ToException(FormatError.NewForeignFormat(actual), path)
                    : new ArgumentException($"{path}: Unknown driver '{actual}'");
            }

            if (actual == "raw")
            {
                return settings.Snapshot is null ? new RawDevice(storage) : throw new NotSupportedException("Failed to load snapshot: Operation not supported");
            }

            var options = new DeviceOptions(settings.Writable, settings.ForceCorrupt, settings.CacheBytes, settings.LoggerFactory.CreateLogger("Qcow"), settings.PassDiscards, settings.Snapshot);
            // The snapshot is the top image's; its backing files are read as they are.
            QcowDevice device = QcowDevice.Open(
                storage,
                options,
                (name, backingFormat) => settings.OpenBackingFiles ? OpenBacking(path, name, settings.BackingFormat ?? backingFormat, settings with { Snapshot = null }, chain) : null,
                name => settings.OpenBackingFiles ? OpenDataFile(path, name, settings) : null);
            if (actual != "qcow*" && device.FormatName != actual)
            {
                device.Dispose();
                throw FormatErrors.ToException(FormatError.NewWrongFormat(actual), path);
            }

            return device;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    /// <summary>An external data file, read-only, through the policy, locked as QEMU locks it.</summary>
    private static IStorage OpenDataFile(string imagePath, string name, OpenSettings settings)
    {
        string resolved = ResolveBacking(imagePath, name);
        var file = new ReferencedFile(imagePath, name, resolved, ReferencedFileRole.ExternalDataFile);
        if (!settings.Policy.Allows(file))
        {
            throw new UnauthorizedAccessException($"{imagePath}: the policy does not allow opening its data file '{name}'");
        }

        return FileStorage.Open(resolved, writable: false, shareAll: settings.ForceShare);
    }

    private static IBlockDevice OpenBacking(string imagePath, string name, string? format, OpenSettings settings, HashSet<string> chain)
    {
        string resolved = ResolveBacking(imagePath, name);
        var file = new ReferencedFile(imagePath, name, resolved, ReferencedFileRole.BackingFile);
        if (!settings.Policy.Allows(file))
        {
            throw new UnauthorizedAccessException($"{imagePath}: the policy does not allow opening its backing file '{name}'");
        }

        if (format is { } named && !IsReadable(named) && !ForeignFormats.Contains(named))
        {
            // As QEMU says it: the format the image records for its backing file names no driver.
            throw new ArgumentException($"Could not open backing file: Unknown driver '{named}'");
        }

        try
        {
            return Open(resolved, format, settings with { Writable = false, ForceCorrupt = false, FaultInjection = null, BackingFormat = null }, chain);
        }
        catch (FileNotFoundException e)
        {
            // QEMU's words: the backing file's own error, after what was being opened.
            throw new FileNotFoundException($"Could not open backing file: {e.Message}", e.FileName, e);
        }
        catch (UnauthorizedAccessException e) when (e.Message.StartsWith("Could not open '", StringComparison.Ordinal))
        {
            throw new UnauthorizedAccessException($"Could not open backing file: {e.Message}", e);
        }
    }

    /// <summary>
    /// A relative backing name is relative to the directory of the image that names it, joined
    /// as QEMU's path_combine joins it (so that the name reads as qemu-img prints it).
    /// </summary>
    public static string ResolveBacking(string imagePath, string name)
    {
        int slash = imagePath.LastIndexOf('/');
        return System.IO.Path.IsPathRooted(name) || slash < 0 ? name : imagePath[..(slash + 1)] + name;
    }
}
