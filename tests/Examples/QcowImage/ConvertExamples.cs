// Examples of QcowImage.Convert: a conversion with progress, several sources, compression,
// cancellation; each result read back through qemu-img.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class ConvertExamples
{
    [OracleFact]
    public void Convert_ToQcow2_WithProgress_ReadsAsTheSource_AndPassesCheck()
    {
        using var dir = new TempDir();
        byte[] data = new byte[5 << 20];
        new Random(3).NextBytes(data.AsSpan(1 << 20, 1 << 20));
        File.WriteAllBytes(dir.File("disk.raw"), data);
        var reports = new List<double>();

        using (QcowImage source = QcowImage.Open(dir.File("disk.raw"), new QcowOpenOptions { Format = QcowImageFormat.Raw, ReadOnly = true }))
        {
            QcowImage.Convert([source], dir.File("disk.qcow2"), new QcowConvertOptions(), new SyncProgress(reports.Add));
        }

        Assert.Equal(data, Qemu.RawBytes(dir.Path, "disk.qcow2"));
        Qemu.AssertClean(dir.Path, "disk.qcow2");
        Assert.Equal(100.0, reports[^1]);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.First <= p.Second), "progress never goes back");
    }

    [OracleFact]
    public void Convert_OfTwoSources_Compressed_IsTheirConcatenation()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "1M");
        Qemu.Io(dir.Path, "a.qcow2", "write -P 1 0 64k");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "b.qcow2", "2M");
        Qemu.Io(dir.Path, "b.qcow2", "write -P 2 1M 64k");

        using (QcowImage a = QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { ReadOnly = true }))
        using (QcowImage b = QcowImage.Open(dir.File("b.qcow2"), new QcowOpenOptions { ReadOnly = true }))
        {
            QcowImage.Convert([a, b], dir.File("ab.qcow2"), new QcowConvertOptions { Compress = true });
        }

        byte[] expected = [.. Qemu.RawBytes(dir.Path, "a.qcow2"), .. Qemu.RawBytes(dir.Path, "b.qcow2")];
        Assert.Equal(expected, Qemu.RawBytes(dir.Path, "ab.qcow2"));
        var check = System.Text.Json.Nodes.JsonNode.Parse(Qemu.Ok("qemu-img", dir.Path, "check", "--output=json", "ab.qcow2"))!;
        Assert.Equal(2, (long)check["compressed-clusters"]!);
        Qemu.AssertClean(dir.Path, "ab.qcow2");
    }

    [Fact]
    public void Convert_Cancelled_ThrowsOperationCanceled()
    {
        using var dir = new TempDir();
        using QcowImage source = QcowImage.Create(dir.File("s.qcow2"), new QcowCreateOptions { Size = 64 << 20 });
        source.Write(0, new byte[1 << 20].Select((_, i) => (byte)i).ToArray());
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => QcowImage.Convert([source], dir.File("t.raw"), new QcowConvertOptions { Target = new QcowCreateOptions { Format = QcowImageFormat.Raw } }, null, cancelled.Token));
    }

    [Fact]
    public void Convert_CompressedIntoRaw_IsRefused()
    {
        using var dir = new TempDir();
        using QcowImage source = QcowImage.Create(dir.File("s.qcow2"), new QcowCreateOptions { Size = 1 << 20 });

        Assert.Throws<NotSupportedException>(() => QcowImage.Convert([source], dir.File("t.raw"), new QcowConvertOptions { Compress = true, Target = new QcowCreateOptions { Format = QcowImageFormat.Raw } }));
    }
}

/// <summary>An IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress(Action<double> report) : IProgress<double>
{
    public void Report(double value) => report(value);
}
