// The exception for an image that another process (QEMU or Qcow) has open in a way that
// conflicts with this open, as QEMU's image locking decides it.
using System.IO;

namespace Qcow;

/// <summary>
/// Another process holds the image in a way that conflicts with this open: a writer excludes
/// every other writer and every reader that does not force sharing.
/// </summary>
public sealed class QcowLockedException : IOException
{
    internal QcowLockedException(string path, string conflict, string? holders)
        : base($"{path}: {conflict}: {(holders is null ? "is another process using the image?" : $"the image is in use by {holders}")}")
    {
        ImagePath = path;
        Holders = holders;
    }

    /// <summary>The image that could not be locked.</summary>
    public string ImagePath { get; }

    /// <summary>The processes that have the file open (name and pid), when they can be seen; null otherwise.</summary>
    public string? Holders { get; }
}
