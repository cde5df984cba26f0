// The ways QEMU's tools let a user describe what to open, against qemu-io: json: (with QEMU's
// single quotes), file:, blkdebug: with no rules, --image-opts, open -o with a nested format, a
// protocol driver refusing what is not its kind of file, "backing": null, the null drivers, the
// compress filter, and blkdebug's injected errors (config file and JSON rules). Each reads (or is
// refused) as qemu-io reads it; the run happens in the images' folder so names print the same.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class ImageDescriptionTests
{
    [OracleTheory]
    [InlineData("-c", "read -q -P 1 0 64k", "json:{'driver':'qcow2','file':{'driver':'file','filename':'top.qcow2'}}")]
    [InlineData("-c", "read -q -P 0 0 64k", "json:{'driver':'qcow2','file':{'filename':'top.qcow2'},'backing':null}")]
    [InlineData("-c", "read -q -P 2 1M 64k", "file:top.qcow2")]
    [InlineData("-c", "read -q -P 2 1M 64k", "blkdebug::top.qcow2")]
    [InlineData("--image-opts", "-c", "read -q -P 1 0 64k", "driver=qcow2,file.driver=file,file.filename=top.qcow2")]
    [InlineData("-c", "open -o driver=qcow2,file.driver=qcow2,file.file.filename=outer.qcow2", "-c", "read -q -P 1 0 512")]
    [InlineData("-c", "open -r -o driver=file,filename=sub")]
    [InlineData("-c", "open -o driver=file,filename=sub")]
    [InlineData("-c", "open -r -o driver=host_device,filename=sub")]
    [InlineData("-c", "open -o driver=qcow2,file.bogus=1 top.qcow2")]
    [InlineData("-c", "read -q -P 0 1M 64k", "json:{'driver':'null-co','size':4194304,'read-zeroes':true}")]
    [InlineData("-c", "length", "null-co://")]
    [InlineData("-c", "read -q -P 1 0 64k", "-c", "read -q -P 1 0 64k", "blkdebug:l2load.conf:base.qcow2")]
    [InlineData("-c", "read -q -P 1 0 64k", "-c", "read -q -P 1 0 64k", "blkdebug:once.conf:base.qcow2")]
    [InlineData("-c", "write -q -P 3 2M 64k", "-c", "read -q -P 3 2M 64k", "blkdebug:write.conf:base.qcow2")]
    [InlineData("-c", "read -q -P 1 0 64k", "json:{'driver':'qcow2','file':{'driver':'blkdebug','inject-error':[{'event':'read_aio','once':true}],'image':{'driver':'file','filename':'base.qcow2'}}}")]
    public void ADescription_OpensAsQemuIoOpensIt(params string[] args)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "4M");
        Qemu.Io(dir.Path, "base.qcow2", "write -P 1 0 64k", "write -P 2 1M 64k");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "inner.qcow2", "1M");
        Qemu.Io(dir.Path, "inner.qcow2", "write -P 1 0 512");
        Qemu.Ok("qemu-img", dir.Path, "convert", "-f", "raw", "-O", "qcow2", "inner.qcow2", "outer.qcow2");
        Directory.CreateDirectory(dir.File("sub"));
        File.WriteAllText(dir.File("l2load.conf"), "[inject-error]\nevent = \"l2_load\"\nerrno = \"5\"\n");
        File.WriteAllText(dir.File("once.conf"), "[inject-error]\nevent = \"read_aio\"\nerrno = \"28\"\nonce = \"on\"\n");
        File.WriteAllText(dir.File("write.conf"), "[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\nonce = \"on\"\n");

        var theirs = Qemu.Run("qemu-io", dir.Path, args);
        var (code, stdout, stderr) = QcowTool.RunIn(dir.Path, ["io", .. args]);

        Assert.Equal(theirs.ExitCode, code);
        Assert.Equal(theirs.Stdout, stdout);
        Assert.Equal(theirs.Stderr.Replace("qemu-io:", "qcow:"), stderr);
    }

    [OracleFact]
    public void TheCompressFilter_WritesTheClustersQemuIoWrites()
    {
        using var dir = new TempDir();
        foreach (string image in new[] { "theirs.qcow2", "mine.qcow2" })
        {
            Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", image, "1M");
            Qemu.Io(dir.Path, image, "write -P 1 0 64k");
        }

        string[] commands = ["-c", "write -q -P 5 70000 9000", "-c", "write -q -P 6 200000 4096"];
        Qemu.Ok("qemu-io", dir.Path, ["--image-opts", .. commands, "driver=compress,file.driver=qcow2,file.file.filename=theirs.qcow2"]);
        Assert.Equal(0, Cli.Cli.Run(["io", "--image-opts", .. commands, $"driver=compress,file.driver=qcow2,file.file.filename={dir.File("mine.qcow2")}"], new StringWriter(), new StringWriter()));

        Assert.Equal(Qemu.RawBytes(dir.Path, "theirs.qcow2"), Qemu.RawBytes(dir.Path, "mine.qcow2"));
        Assert.Equal(
            Qemu.Ok("qemu-img", dir.Path, "check", "--output=json", "theirs.qcow2").Replace("theirs", "mine"),
            Qemu.Ok("qemu-img", dir.Path, "check", "--output=json", "mine.qcow2"));
    }
}
