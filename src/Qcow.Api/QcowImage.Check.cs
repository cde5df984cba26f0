// Checking and repairing an image, as qemu-img check does.
using System;
using System.Collections.Generic;
using Qcow.Format;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Flushes, then checks the image's refcounts and COPIED flags against the references its
    /// tables hold, as qemu-img check does. With a repair mode it repairs what that mode allows
    /// (see <see cref="QcowCheckMode"/>) and, if it repaired anything, checks again; the result
    /// then counts what the repair fixed and what the second check found. A repair holds the
    /// image's lock throughout: other threads' requests wait for it, then go on with the repaired
    /// image.
    /// </summary>
    /// <exception cref="NotSupportedException">The image is qcow version 1 or raw, which have no refcounts.</exception>
    /// <exception cref="InvalidOperationException">A repair was asked of an image open read-only.</exception>
    /// <exception cref="QcowFormatException">The metadata cannot be read.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read or written.</exception>
    public QcowCheckResult Check(QcowCheckMode mode = QcowCheckMode.ReportOnly)
    {
        QcowDevice device = Checkable();
        if (mode == QcowCheckMode.ReportOnly)
        {
            CheckReport report = device.Check();
            return Result(report, report.CorruptionsFixed, report.LeaksFixed, report.Messages);
        }

        CheckReport repair = device.Repair(mode == QcowCheckMode.RepairAll ? RefcountCheck.Repair.All : RefcountCheck.Repair.Leaks);
        if (!repair.Completed || (repair.CorruptionsFixed == 0 && repair.LeaksFixed == 0))
        {
            return Result(repair, repair.CorruptionsFixed, repair.LeaksFixed, repair.Messages);
        }

        CheckReport after = device.Check();
        return Result(after, repair.CorruptionsFixed, repair.LeaksFixed, [.. repair.Messages, .. after.Messages]);
    }

    /// <summary>The image as one with refcounts to check.</summary>
    private QcowDevice Checkable() => _device as QcowDevice ?? throw new NotSupportedException($"{Path}: This image format does not support checks");

    private static QcowCheckResult Result(CheckReport report, long corruptionsFixed, long leaksFixed, IReadOnlyList<string> messages) => new()
    {
        Corruptions = report.Corruptions,
        Leaks = report.Leaks,
        CheckErrors = report.CheckErrors,
        Completed = report.Completed,
        CorruptionsFixed = corruptionsFixed,
        LeaksFixed = leaksFixed,
        ImageEndOffset = report.ImageEndOffset,
        TotalClusters = report.TotalClusters,
        AllocatedClusters = report.AllocatedClusters,
        FragmentedClusters = report.FragmentedClusters,
        CompressedClusters = report.CompressedClusters,
        Messages = messages,
    };
}
