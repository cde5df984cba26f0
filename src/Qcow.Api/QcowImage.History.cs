// Changing what an image is layered on: rebase (a new backing file, the guest's disk kept or
// not) and commit (an overlay's data written down into its backing chain).
using System;
using System.Threading;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Gives a closed qcow2 image a new backing file, as qemu-img rebase does. In safe mode (the
    /// default) every run the image does not allocate itself, where the old backing chain and the
    /// new one differ, is first copied into the image, so the guest sees the same disk; with
    /// <see cref="QcowRebaseOptions.Unsafe"/> only the name and format change (qemu-img rebase -u).
    /// A null or empty <paramref name="backingFile"/> leaves the image standalone.
    /// </summary>
    /// <param name="path">The image file; no one else may have it open.</param>
    /// <param name="backingFile">The new backing file's name as the image will record it (relative names are relative to the image's folder); null or empty for none.</param>
    /// <param name="options">The new backing file's format (required with a backing file, as in QEMU 7.2), unsafe mode, logging.</param>
    /// <param name="progress">Receives the percentage of the disk compared so far.</param>
    /// <param name="cancellationToken">Stops the copy between chunks; the image keeps its old backing file and what was copied (the same disk).</param>
    /// <exception cref="InvalidOperationException">No backing format given for a backing file, the new backing file cannot be opened, or the image is not qcow2; the message says which, in qemu-img's words.</exception>
    /// <exception cref="QcowFormatException">The image is not a valid qcow2 image, or the new name does not fit in its header cluster.</exception>
    /// <exception cref="QcowLockedException">Another process has the image open.</exception>
    /// <exception cref="System.IO.IOException">A file cannot be read or written, or the old backing file cannot be opened in safe mode.</exception>
    public static void Rebase(string path, string? backingFile, QcowRebaseOptions? options = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new QcowRebaseOptions();
        string? backing = string.IsNullOrEmpty(backingFile) ? null : backingFile;
        QcowImageFormat format = options.Format ?? Probe(path);
        if (format != QcowImageFormat.Qcow2)
        {
            throw new InvalidOperationException($"Could not change the backing file to '{backingFile}': Operation not supported");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var settings = new OpenSettings(true, false, options.CacheSize, options.LoggerFactory ?? NullLoggerFactory.Instance, ReferencedFilePolicy.Default, ForceShare: options.ForceShare);
        Rebaser.Rebase(
            path,
            FormatNames.Name(format),
            backing,
            options.BackingFormat is { } f ? FormatNames.Name(f) : null,
            !options.Unsafe,
            settings,
            progress,
            cancellationToken);
    }

    /// <summary>
    /// Writes a closed overlay's data down into its backing chain, as qemu-img commit does:
    /// everything the layers above the base allocate is copied into the base (grown first if it
    /// is shorter). Committing into the immediate backing file (no <see cref="QcowCommitOptions.Base"/>)
    /// then empties the overlay, unless <see cref="QcowCommitOptions.KeepOverlay"/>; a deeper base
    /// leaves every layer above it as it was, as qemu-img does.
    /// </summary>
    /// <param name="path">The overlay; no one else may have it or its base open for writing.</param>
    /// <param name="options">The base, whether to keep the overlay's data, logging; null for the defaults.</param>
    /// <param name="progress">Receives the percentage of the data copied.</param>
    /// <param name="cancellationToken">Stops the copy between chunks: the base then holds part of the data, the overlay all of it (the same disk).</param>
    /// <exception cref="InvalidOperationException">The image has no backing file, or the base is not in its chain (qemu-img's words).</exception>
    /// <exception cref="QcowFormatException">An image in the chain is not valid, or uses what Qcow cannot write yet.</exception>
    /// <exception cref="QcowLockedException">Another process has the base or the overlay open.</exception>
    /// <exception cref="System.IO.IOException">A file cannot be read or written.</exception>
    public static void Commit(string path, QcowCommitOptions? options = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new QcowCommitOptions();
        QcowImageFormat format = options.Format ?? Probe(path);
        cancellationToken.ThrowIfCancellationRequested();
        var settings = new OpenSettings(true, false, options.CacheSize, options.LoggerFactory ?? NullLoggerFactory.Instance, ReferencedFilePolicy.Default);
        Committer.Commit(path, FormatNames.Name(format), options.Base, options.KeepOverlay, settings, progress, cancellationToken);
    }
}
