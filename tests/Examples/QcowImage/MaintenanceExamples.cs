// Examples of the offline operations: resize (grow with preallocation, shrink) and amend (compat,
// refcount width), each result checked by qemu-img.
using System;
using System.Collections.Generic;
using System.Text.Json.Nodes;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class MaintenanceExamples
{
    [OracleFact]
    public void Resize_Grows_WithPreallocationAndProgress_AndShrinksOnlyWhenAllowed()
    {
        using var dir = new TempDir();
        string path = dir.File("a.qcow2");
        using (QcowImage image = QcowImage.Create(path, new QcowCreateOptions { Size = 1 << 20 }))
        {
            image.Write(0, new byte[] { 7 });
        }

        var reports = new List<double>();
        QcowImage.Resize(path, 8 << 20, new QcowResizeOptions { Preallocation = QcowPreallocation.Metadata }, new SyncProgress(reports.Add));
        Assert.Equal(100.0, reports[^1]);
        Assert.Contains("\"virtual-size\": 8388608", Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", "a.qcow2"), StringComparison.Ordinal);
        Qemu.AssertClean(dir.Path, "a.qcow2");

        var refused = Assert.Throws<InvalidOperationException>(() => QcowImage.Resize(path, 1 << 20));
        Assert.StartsWith("Use the --shrink option", refused.Message, StringComparison.Ordinal);
        QcowImage.Resize(path, 1 << 20, new QcowResizeOptions { Shrink = true });
        Assert.Equal(7, Qemu.RawBytes(dir.Path, "a.qcow2")[0]);
        Assert.Equal(1 << 20, Qemu.RawBytes(dir.Path, "a.qcow2").Length);
        Qemu.AssertClean(dir.Path, "a.qcow2");
    }

    [OracleFact]
    public void Amend_ChangesTheRefcountWidthAndCompat_KeepingTheData()
    {
        using var dir = new TempDir();
        string path = dir.File("a.qcow2");
        using (QcowImage image = QcowImage.Create(path, new QcowCreateOptions { Size = 4 << 20 }))
        {
            image.Write(1 << 20, new byte[65536]);
            image.Write(3 << 20, new byte[] { 5, 6 });
        }

        QcowImage.Amend(path, new QcowAmendOptions { RefcountBits = 64 });
        QcowImage.Amend(path, new QcowAmendOptions { RefcountBits = 16, Compat = QcowCompat.V0_10 });

        JsonNode info = JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "info", "--output=json", "a.qcow2"))!;
        Assert.Equal(("0.10", 16), ((string)info["format-specific"]!["data"]!["compat"]!, (int)info["format-specific"]!["data"]!["refcount-bits"]!));
        Assert.Equal(new byte[] { 5, 6 }, Qemu.RawBytes(dir.Path, "a.qcow2")[(3 << 20)..((3 << 20) + 2)]);
        Qemu.AssertClean(dir.Path, "a.qcow2");
        Assert.Throws<ArgumentException>(() => QcowImage.Amend(path, new QcowAmendOptions { RefcountBits = 3 }));
    }
}
