// qcow io's inspection commands against qemu-io's: map, alloc and info print the same text for
// qcow2 (v2 and v3, with a backing file), qcow and raw images, several -c in order; a request
// the system fails is reported as qemu-io reports it.
using System.IO;
using Microsoft.Extensions.Logging.Abstractions;
using Qcow.Cli;
using Qcow.Examples.Oracle;
using Qcow.Examples.Reliability;
using Qcow.IO;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class IoCommandTests
{
    private static readonly string[] Commands = ["map", "alloc 0 64k", "alloc 100k 2M", "alloc 0", "info", "length"];

    [OracleTheory]
    [InlineData("qcow2", "")]
    [InlineData("qcow2", "compat=0.10,cluster_size=4k")]
    [InlineData("qcow", "")]
    [InlineData("raw", "")]
    public void InspectionCommands_PrintWhatQemuIoPrints(string format, string options)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, "base.img", "8M"]);
        Qemu.Ok("qemu-io", dir.Path, "-f", format, "-c", "write -P 1 0 100k", "-c", "write -P 2 3M 64k", "base.img");
        AssertSame(dir, format, "base.img");
        if (format == "qcow2")
        {
            Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.img", "-F", "qcow2", "top.qcow2");
            Qemu.Io(dir.Path, "top.qcow2", "write -P 3 64k 128k", "write -z 5M 64k");
            AssertSame(dir, "qcow2", "top.qcow2");
        }
    }

    [OracleFact]
    public void RequestTheSystemFails_IsQemuIosFailedLine_AndTheSessionGoesOn()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "image", "8M");
        string path = dir.File("image");
        var storage = new CrashStorage(path, File.ReadAllBytes(path)) { FullFrom = 0 };
        using var image = QcowImage.Of(QcowDevice.Open(storage, new DeviceOptions(true, false, 1 << 20, NullLogger.Instance), (_, _) => null));
        var stdout = new StringWriter();
        var session = new IoSession(stdout, new StringWriter(), image);

        Assert.True(session.Execute("write -P 1 0 64k"));
        Assert.True(session.Failed);
        Assert.Equal("write failed: No space left on device", stdout.ToString().TrimEnd());
        Assert.True(session.Execute("read -P 0 0 64k"));
        Assert.StartsWith("read 65536/65536 bytes at offset 0", stdout.ToString().Split('\n')[1]);
    }

    private static void AssertSame(TempDir dir, string format, string image)
    {
        var args = new System.Collections.Generic.List<string> { "-r", "-f", format };
        foreach (string c in Commands)
        {
            args.Add("-c");
            args.Add(c);
        }

        string theirs = Qemu.Ok("qemu-io", dir.Path, [.. args, image]);
        var stdout = new StringWriter();
        Assert.Equal(0, Cli.Cli.Run(["io", .. args, dir.File(image)], stdout, new StringWriter()));
        Assert.Equal(theirs, stdout.ToString());
    }
}
