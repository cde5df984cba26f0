// Internal snapshots of a closed qcow2 image: taking, applying and deleting them, as qemu-img
// snapshot -c, -a and -d do. An open image lists them in Info.Snapshots.
using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Takes an internal snapshot of a closed qcow2 image's current state, as qemu-img snapshot -c
    /// does: the snapshot shares every cluster with the active state until either is written.
    /// The new tables are made durable before one header write switches to them, so a crash
    /// leaves the image as it was or with the snapshot complete.
    /// </summary>
    /// <param name="path">The image file; no one else may have it open.</param>
    /// <param name="name">The snapshot's name (QEMU allows two snapshots of one name; their IDs differ).</param>
    /// <param name="options">The clock and logging; null for the defaults.</param>
    /// <param name="cancellationToken">Checked before the change starts.</param>
    /// <returns>The snapshot as the table now records it.</returns>
    /// <exception cref="NotSupportedException">The image is not qcow2 (qcow v1 and raw have no internal snapshots).</exception>
    /// <exception cref="InvalidOperationException">The image holds QEMU's maximum of 65536 snapshots.</exception>
    /// <exception cref="QcowFormatException">The image is not a valid qcow2 image, or uses what Qcow cannot write yet.</exception>
    /// <exception cref="QcowLockedException">Another process has the image open.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read or written.</exception>
    public static QcowSnapshotInfo CreateSnapshot(string path, string name, QcowSnapshotOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        options = SnapshotsPossible(path, options, cancellationToken);
        DateTimeOffset now = (options.Clock ?? TimeProvider.System).GetUtcNow();
        using FileStorage storage = FileStorage.Open(path, writable: true);
        return QcowSnapshotInfo.Of(SnapshotEditor.Create(storage, name, now, SnapshotLogger(options)));
    }

    /// <summary>
    /// Makes a snapshot the current state of a closed qcow2 image, as qemu-img snapshot -a does:
    /// what was written since is lost, and the virtual size becomes the snapshot's. A crash
    /// leaves the image as it was or with the snapshot applied.
    /// </summary>
    /// <param name="path">The image file; no one else may have it open.</param>
    /// <param name="idOrName">The snapshot's ID or, when no ID matches, its name.</param>
    /// <param name="options">Logging; null for the defaults.</param>
    /// <param name="cancellationToken">Checked before the change starts.</param>
    /// <exception cref="KeyNotFoundException">No snapshot has that ID or name.</exception>
    /// <exception cref="InvalidOperationException">The image has persistent bitmaps ("Device has active dirty bitmaps", as QEMU refuses).</exception>
    /// <exception cref="NotSupportedException">The image is not qcow2.</exception>
    /// <exception cref="QcowFormatException">The image is not a valid qcow2 image, or uses what Qcow cannot write yet.</exception>
    /// <exception cref="QcowLockedException">Another process has the image open.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read or written.</exception>
    public static void ApplySnapshot(string path, string idOrName, QcowSnapshotOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(idOrName);
        options = SnapshotsPossible(path, options, cancellationToken);
        using FileStorage storage = FileStorage.Open(path, writable: true);
        SnapshotEditor.Apply(storage, idOrName, SnapshotLogger(options));
    }

    /// <summary>
    /// Deletes an internal snapshot of a closed qcow2 image, as qemu-img snapshot -d does: the
    /// clusters only it used become free. A crash leaves the snapshot there or gone, never half.
    /// </summary>
    /// <param name="path">The image file; no one else may have it open.</param>
    /// <param name="idOrName">The snapshot's ID or, when no ID matches, its name.</param>
    /// <param name="options">Logging; null for the defaults.</param>
    /// <param name="cancellationToken">Checked before the change starts.</param>
    /// <exception cref="KeyNotFoundException">No snapshot has that ID or name.</exception>
    /// <exception cref="NotSupportedException">The image is not qcow2.</exception>
    /// <exception cref="QcowFormatException">The image is not a valid qcow2 image, or uses what Qcow cannot write yet.</exception>
    /// <exception cref="QcowLockedException">Another process has the image open.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read or written.</exception>
    public static void DeleteSnapshot(string path, string idOrName, QcowSnapshotOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(idOrName);
        options = SnapshotsPossible(path, options, cancellationToken);
        using FileStorage storage = FileStorage.Open(path, writable: true);
        SnapshotEditor.Delete(storage, idOrName, SnapshotLogger(options));
    }

    private static QcowSnapshotOptions SnapshotsPossible(string path, QcowSnapshotOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Probe(path) != QcowImageFormat.Qcow2)
        {
            throw new NotSupportedException("Operation not supported");
        }

        cancellationToken.ThrowIfCancellationRequested();
        return options ?? new QcowSnapshotOptions();
    }

    private static ILogger SnapshotLogger(QcowSnapshotOptions options) => (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Qcow");
}
