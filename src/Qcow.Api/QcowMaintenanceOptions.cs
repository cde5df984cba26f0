// Options for the offline changes to an image: resize, amend and internal snapshots.
using System;
using Microsoft.Extensions.Logging;

namespace Qcow;

/// <summary>How <see cref="QcowImage.Resize"/> resizes an image.</summary>
public sealed class QcowResizeOptions
{
    /// <summary>The image's format; null probes it, as qemu-img resize without -f.</summary>
    public QcowImageFormat? Format { get; init; }

    /// <summary>A smaller size is allowed, and the data past it is lost (qemu-img's --shrink). Default: false.</summary>
    public bool Shrink { get; init; }

    /// <summary>What the grown area allocates up front (qcow2). Default: off.</summary>
    public QcowPreallocation Preallocation { get; init; }

    /// <summary>Where the resize logs; null logs nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>
/// What <see cref="QcowImage.Amend"/> changes in a qcow2 image, as qemu-img amend's options;
/// null leaves a setting as it is.
/// </summary>
public sealed class QcowAmendOptions
{
    /// <summary>The compatibility level: a downgrade to 0.10 is refused while the image uses what version 2 cannot hold.</summary>
    public QcowCompat? Compat { get; init; }

    /// <summary>The lazy refcounts feature (compat 1.1 only).</summary>
    public bool? LazyRefcounts { get; init; }

    /// <summary>The refcount width in bits, a power of two from 1 to 64 (other than 16 needs compat 1.1): the refcount structures are rebuilt.</summary>
    public int? RefcountBits { get; init; }

    /// <summary>Where the amend logs; null logs nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>How <see cref="QcowImage.CreateSnapshot"/>, <see cref="QcowImage.ApplySnapshot"/> and <see cref="QcowImage.DeleteSnapshot"/> work.</summary>
public sealed class QcowSnapshotOptions
{
    /// <summary>Where a new snapshot's date comes from; null takes the system's clock.</summary>
    public TimeProvider? Clock { get; init; }

    /// <summary>Where the change logs; null logs nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>How <see cref="QcowImage.Rebase"/> changes an image's backing file.</summary>
public sealed class QcowRebaseOptions
{
    /// <summary>The image's format; null probes it (it must be qcow2).</summary>
    public QcowImageFormat? Format { get; init; }

    /// <summary>The new backing file's format (qemu-img's -F); required when there is a backing file.</summary>
    public QcowImageFormat? BackingFormat { get; init; }

    /// <summary>Change only the name and format, copying nothing (qemu-img rebase -u): for a backing file that was moved or renamed. Default: false.</summary>
    public bool Unsafe { get; init; }

    /// <summary>Open the new backing file without locking others out of it (qemu-img's -U). Default: false.</summary>
    public bool ForceShare { get; init; }

    /// <summary>L2 cache per image for the safe copy. Default: 32 MiB.</summary>
    public long CacheSize { get; init; } = 32L << 20;

    /// <summary>Where the rebase logs; null logs nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>How <see cref="QcowImage.Commit"/> writes an overlay into its backing chain.</summary>
public sealed class QcowCommitOptions
{
    /// <summary>The overlay's format; null probes it.</summary>
    public QcowImageFormat? Format { get; init; }

    /// <summary>The image to commit into, named as a path or as the chain records it (qemu-img's -b); null for the overlay's backing file. A deeper base leaves the overlay as it is.</summary>
    public string? Base { get; init; }

    /// <summary>Leave the overlay's data in it after committing into its backing file (qemu-img's -d). Default: false, the overlay is emptied.</summary>
    public bool KeepOverlay { get; init; }

    /// <summary>L2 cache per image. Default: 32 MiB.</summary>
    public long CacheSize { get; init; } = 32L << 20;

    /// <summary>Where the commit logs; null logs nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}
