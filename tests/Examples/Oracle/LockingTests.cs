// Image locking against a real QEMU: qemu-io holding an image keeps Qcow out, Qcow holding one
// keeps qemu-io and qemu-img out, in QEMU's own words, and -U / ForceShare lets readers in.
using System;
using System.Diagnostics;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class LockingTests
{
    [OracleFact]
    public void WhileQemuWrites_QcowCannotOpen_UnlessReadingWithForceShare()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "held.qcow2", "1M");
        using (HeldByQemuIo(dir, "held.qcow2", readOnly: false))
        {
            var writer = Assert.Throws<QcowLockedException>(() => QcowImage.Open(dir.File("held.qcow2")));
            Assert.Contains("Failed to get \"write\" lock", writer.Message);
            Assert.Contains("qemu-io", writer.Holders);

            var reader = Assert.Throws<QcowLockedException>(() => QcowImage.Open(dir.File("held.qcow2"), new QcowOpenOptions { ReadOnly = true }));
            Assert.Contains("Failed to get shared \"write\" lock", reader.Message);

            using QcowImage shared = QcowImage.Open(dir.File("held.qcow2"), new QcowOpenOptions { ReadOnly = true, ForceShare = true });
            Assert.Equal(1L << 20, shared.Length);
        }

        using QcowImage afterwards = QcowImage.Open(dir.File("held.qcow2"));
        Assert.True(afterwards.CanWrite);
    }

    [OracleFact]
    public void WhileQemuReads_QcowCanRead_ButNotWrite()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "held.qcow2", "1M");
        using (HeldByQemuIo(dir, "held.qcow2", readOnly: true))
        {
            var writer = Assert.Throws<QcowLockedException>(() => QcowImage.Open(dir.File("held.qcow2")));
            Assert.Contains("Failed to get \"write\" lock", writer.Message);

            using QcowImage reader = QcowImage.Open(dir.File("held.qcow2"), new QcowOpenOptions { ReadOnly = true });
            Assert.False(reader.CanWrite);
        }
    }

    [OracleFact]
    public void WhileQcowWrites_QemuCannotOpen_UnlessReadingWithU()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "held.qcow2", "1M");
        using (QcowImage.Open(dir.File("held.qcow2")))
        {
            var io = Qemu.Run("qemu-io", dir.Path, "-c", "read 0 512", "held.qcow2");
            Assert.NotEqual(0, io.ExitCode);
            Assert.Contains("Failed to get \"write\" lock", io.Stderr + io.Stdout);

            var info = Qemu.Run("qemu-img", dir.Path, "info", "held.qcow2");
            Assert.NotEqual(0, info.ExitCode);
            Assert.Contains("Failed to get shared \"write\" lock", info.Stderr);

            Qemu.Ok("qemu-img", dir.Path, "info", "-U", "held.qcow2");
        }

        Qemu.Ok("qemu-io", dir.Path, "-c", "write 0 512", "held.qcow2");
    }

    [OracleFact]
    public void WhileQcowReads_QemuCanRead_ButNotWrite()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "held.qcow2", "1M");
        using (QcowImage.Open(dir.File("held.qcow2"), new QcowOpenOptions { ReadOnly = true }))
        {
            Qemu.Ok("qemu-img", dir.Path, "info", "held.qcow2");
            var io = Qemu.Run("qemu-io", dir.Path, "-c", "write 0 512", "held.qcow2");
            Assert.NotEqual(0, io.ExitCode);
            Assert.Contains("Failed to get \"write\" lock", io.Stderr + io.Stdout);
        }
    }

    [OracleFact]
    public void ConvertingOntoAnImageQemuHolds_IsRefused_AndLeavesItWhole()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "src.qcow2", "1M");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "held.qcow2", "1M");
        Qemu.Io(dir.Path, "held.qcow2", "write -P 7 0 64k");
        byte[] before = System.IO.File.ReadAllBytes(dir.File("held.qcow2"));
        using (HeldByQemuIo(dir, "held.qcow2", readOnly: false))
        {
            var stderr = new System.IO.StringWriter();
            Assert.Equal(1, Cli.Cli.Run(["convert", "-O", "qcow2", dir.File("src.qcow2"), dir.File("held.qcow2")], new System.IO.StringWriter(), stderr));
            Assert.Contains("lock", stderr.ToString());
        }

        Assert.Equal(before, System.IO.File.ReadAllBytes(dir.File("held.qcow2")));
    }

    [Fact]
    public void TwoQcowWriters_OfOneImage_AreRefused_EvenInOneProcess()
    {
        using var dir = new TempDir();
        using QcowImage first = QcowImage.Create(dir.File("a.qcow2"), new QcowCreateOptions { Size = 1 << 20 });
        Assert.Throws<QcowLockedException>(() => QcowImage.Open(dir.File("a.qcow2")));
        Assert.Throws<ArgumentException>(() => QcowImage.Open(dir.File("a.qcow2"), new QcowOpenOptions { ForceShare = true }));
    }

    /// <summary>An interactive qemu-io with the image open until the handle is disposed.</summary>
    private static HeldImage HeldByQemuIo(TempDir dir, string image, bool readOnly)
    {
        var start = new ProcessStartInfo(Qemu.IoPath!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = dir.Path,
        };
        if (readOnly)
        {
            start.ArgumentList.Add("-r");
        }

        start.ArgumentList.Add(image);
        Process process = Process.Start(start)!;
        // Its answer to a command means the image is open and its locks are taken.
        process.StandardInput.WriteLine("length");
        process.StandardInput.Flush();
        var answer = process.StandardOutput.ReadLineAsync();
        Assert.True(answer.Wait(TimeSpan.FromSeconds(30)), "qemu-io did not answer");
        Assert.Contains("MiB", answer.Result);
        return new HeldImage(process);
    }

    private sealed class HeldImage(Process process) : IDisposable
    {
        public void Dispose()
        {
            process.StandardInput.WriteLine("quit");
            process.StandardInput.Close();
            if (!process.WaitForExit(30_000))
            {
                process.Kill();
            }

            process.Dispose();
        }
    }
}
