// Options for converting images, with qemu-img convert's defaults.
namespace Qcow;

/// <summary>How <see cref="QcowImage.Convert"/> copies its sources into a target.</summary>
public sealed class QcowConvertOptions
{
    /// <summary>
    /// What the target is: its format and, for a new target, its creation options (its size is
    /// the sources' total, whatever <see cref="QcowCreateOptions.Size"/> says). A backing file
    /// here leaves to it the ranges the source's own backing file answers (qemu-img's -B).
    /// Default: a qcow2 image with qemu-img's defaults.
    /// </summary>
    public QcowCreateOptions Target { get; init; } = new();

    /// <summary>Write into an existing target of <see cref="QcowCreateOptions.Format"/>, without creating it (qemu-img's -n). Default: false.</summary>
    public bool ExistingTarget { get; init; }

    /// <summary>An existing target reads as zeros already, so ranges that read as zeros need no writing (--target-is-zero). Default: false.</summary>
    public bool TargetIsZero { get; init; }

    /// <summary>
    /// Runs of zeros at least this long (a multiple of 512, at most 16 MiB) are left unwritten or
    /// written as zeros rather than as data; 0 writes every byte, so that the target is fully
    /// allocated (qemu-img's -S). Default: 4096.
    /// </summary>
    public int MinSparse { get; init; } = 4096;

    /// <summary>Every cluster that holds data is written compressed (qemu-img's -c; qcow2 and qcow targets). Default: false.</summary>
    public bool Compress { get; init; }

    /// <summary>Requests in flight, 1 to 16 (qemu-img's -m). Default: 8.</summary>
    public int Parallelism { get; init; } = 8;

    /// <summary>
    /// The source's persistent bitmaps (its own, not its backing files') are copied into the
    /// qcow2 target with their names, granularities and enabled state (qemu-img's --bitmaps). A
    /// bitmap left in use stops the conversion before the target is made, unless <see cref="SkipBrokenBitmaps"/>.
    /// Default: false.
    /// </summary>
    public bool Bitmaps { get; init; }

    /// <summary>Bitmaps left in use are skipped rather than refused (qemu-img's --skip-broken-bitmaps); <see cref="BitmapSkipped"/> hears of each. Default: false.</summary>
    public bool SkipBrokenBitmaps { get; init; }

    /// <summary>Called with the name of each bitmap <see cref="SkipBrokenBitmaps"/> leaves out. Default: none.</summary>
    public System.Action<string>? BitmapSkipped { get; init; }

    /// <summary>The target's flushes do not reach the disk (qemu-img convert's default cache mode, unsafe). Default: false, so the target is durable when Convert returns.</summary>
    public bool IgnoreFlushes { get; init; }
}
