// Checking and repairing an image, as qemu-img check does.
using System;
using Microsoft.Extensions.Logging;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Flushes, then checks the image's refcounts and COPIED flags against the references its
    /// tables hold; with a repair mode, rebuilds the refcounts (and for RepairAll, first drops
    /// table entries pointing past the end of the file or misaligned, clears reserved bits, and
    /// afterwards fixes COPIED flags), then checks again. A repair closes
    /// and reopens the image: call it while no other thread uses the image.
    /// </summary>
    /// <exception cref="NotSupportedException">The image is qcow version 1, which has no refcounts.</exception>
    /// <exception cref="InvalidOperationException">A repair was asked of an image open read-only.</exception>
    /// <exception cref="QcowFormatException">The metadata cannot be read.</exception>
    /// <exception cref="System.IO.IOException">The file cannot be read or written.</exception>
    public QcowCheckResult Check(QcowCheckMode mode = QcowCheckMode.ReportOnly)
    {
        CheckReport before = _device.Check();
        bool repair = mode switch
        {
            QcowCheckMode.RepairAll => before.Corruptions > 0 || before.Leaks > 0 || _device.IsMarkedCorrupt,
            QcowCheckMode.RepairLeaks => before.Leaks > 0 || _device.IsMarkedCorrupt,
            _ => false,
        };
        if (!repair)
        {
            return Result(before, 0, 0);
        }

        if (!CanWrite)
        {
            throw new InvalidOperationException($"{Path} is open read-only; open it read-write to repair it");
        }

        // The repair needs the file to itself: the device is closed, rebuilt and reopened, which
        // is why no other thread may use the image meanwhile (see the summary).
        string path = _device.Path;
        _device.Dispose();
        QcowDevice.Repair(path, mode == QcowCheckMode.RepairAll, _settings.LoggerFactory.CreateLogger("Qcow"));
        _device = ImageOpener.OpenQcow(path, _settings);
        CheckReport after = _device.Check();
        return Result(after, Math.Max(0, before.Corruptions - after.Corruptions), Math.Max(0, before.Leaks - after.Leaks));
    }

    private static QcowCheckResult Result(CheckReport report, long corruptionsFixed, long leaksFixed) => new()
    {
        Corruptions = report.Corruptions,
        Leaks = report.Leaks,
        CheckErrors = report.CheckErrors,
        CorruptionsFixed = corruptionsFixed,
        LeaksFixed = leaksFixed,
        ImageEndOffset = report.ImageEndOffset,
        TotalClusters = report.TotalClusters,
        AllocatedClusters = report.AllocatedClusters,
        FragmentedClusters = report.FragmentedClusters,
        CompressedClusters = report.CompressedClusters,
        Messages = report.Messages,
    };
}
