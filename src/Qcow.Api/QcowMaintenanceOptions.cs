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
