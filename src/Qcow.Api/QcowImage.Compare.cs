// Comparing two images' guest content, as qemu-img compare does.
using System;
using System.Threading;

namespace Qcow;

/// <summary>What <see cref="QcowImage.Compare"/> found first.</summary>
public enum QcowComparisonVerdict
{
    /// <summary>The images read the same (a longer one reads zeros past the shorter's end, unless strict).</summary>
    Identical,
    /// <summary>The guest bytes differ, from <see cref="QcowComparison.Offset"/> on.</summary>
    ContentMismatch,
    /// <summary>Strict mode: the virtual sizes differ.</summary>
    SizeMismatch,
    /// <summary>Strict mode: the allocation differs at <see cref="QcowComparison.Offset"/>.</summary>
    BlockStatusMismatch,
}

/// <summary>The outcome of <see cref="QcowImage.Compare"/>.</summary>
/// <param name="Verdict">What was found first.</param>
/// <param name="Offset">Where: the first 512-byte sector that differs, or the start of the run whose allocation differs; null otherwise.</param>
/// <param name="SizesDiffer">The virtual sizes differ (qemu-img's "Image size mismatch").</param>
public sealed record QcowComparison(QcowComparisonVerdict Verdict, long? Offset, bool SizesDiffer)
{
    /// <summary>The images read the same.</summary>
    public bool Identical => Verdict == QcowComparisonVerdict.Identical;
}

public sealed partial class QcowImage
{
    /// <summary>
    /// Compares the guest content of two images, as qemu-img compare does: ranges both read as
    /// zeros are not read, a range only one allocates must read as zeros, and past the shorter
    /// image's end the longer must read as zeros. Strict mode also wants equal sizes and the same
    /// allocation.
    /// </summary>
    /// <param name="first">One image.</param>
    /// <param name="second">The other.</param>
    /// <param name="strict">qemu-img's -s.</param>
    /// <param name="progress">Receives the percentage compared, from 0 to 100 as qemu-img shows it; a comparison that stops at a difference ends below 100.</param>
    /// <param name="cancellationToken">Stops the comparison between chunks.</param>
    /// <exception cref="QcowFormatException">Metadata on the way is malformed.</exception>
    /// <exception cref="System.IO.IOException">A file cannot be read.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static QcowComparison Compare(QcowImage first, QcowImage second, bool strict = false, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        return ImageComparer.Compare(first.Device, second.Device, strict, progress, cancellationToken);
    }
}

/// <summary>
/// Reading one of the images failed while they were being compared (qemu-img compare's exit
/// status 4): which image, and the offset of the read that failed.
/// </summary>
public sealed class QcowCompareReadException : System.IO.IOException
{
    internal QcowCompareReadException(string imagePath, long offset, System.IO.IOException inner)
        : base(inner.Message, inner)
    {
        ImagePath = imagePath;
        Offset = offset;
    }

    /// <summary>The image whose read failed (its <see cref="QcowImage.Path"/>).</summary>
    public string ImagePath { get; }

    /// <summary>The guest offset the failed read started at.</summary>
    public long Offset { get; }
}
