// Opening an image from a stream: an image's bytes held in memory, and QEMU's format over format
// (an image stored in another image's virtual disk, as iotest 072 makes one) read as qemu-io
// reads them through its nested options.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class StreamOpenExamples
{
    [OracleFact]
    public void AnImageInAMemoryStream_ReadsAsQemuImgConvertReadsTheFile()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "a.qcow2", "1M");
        Qemu.Io(dir.Path, "a.qcow2", "write -P 7 4k 9k", "write -z 64k 4k", "write -c -P 9 128k 4k");

        using QcowImage image = QcowImage.Open(new MemoryStream(File.ReadAllBytes(dir.File("a.qcow2"))), new QcowOpenOptions { ReadOnly = true }, "a.qcow2");
        byte[] read = new byte[image.Length];
        image.Read(0, read);

        Assert.Equal(Qemu.RawBytes(dir.Path, "a.qcow2"), read);
    }

    [OracleFact]
    public void AnImageInsideAnother_ReadsAsQemuIoReadsItNested()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "inner.qcow2", "8M");
        Qemu.Io(dir.Path, "inner.qcow2", "write -P 42 0 512", "write -P 23 1M 64k");
        Qemu.Ok("qemu-img", dir.Path, "convert", "-f", "raw", "-O", "qcow2", "inner.qcow2", "outer.qcow2");

        Assert.Equal(0, Qemu.Run("qemu-io", dir.Path, "-c", "open -r -o driver=qcow2,file.driver=qcow2,file.file.filename=outer.qcow2", "-c", "read -P 23 1M 64k").ExitCode);
        using QcowImage container = QcowImage.Open(dir.File("outer.qcow2"), new QcowOpenOptions { ReadOnly = true });
        using QcowImage nested = QcowImage.Open(container.AsStream(closeImage: false), new QcowOpenOptions { ReadOnly = true, Format = QcowImageFormat.Qcow2 }, "inner.qcow2");
        byte[] read = new byte[nested.Length];
        nested.Read(0, read);

        Assert.Equal(Qemu.RawBytes(dir.Path, "inner.qcow2"), read);
    }

    [Fact]
    public void AStreamThatCannotSeek_IsRefused()
    {
        using var pipe = new NonSeekable();
        Assert.Throws<System.ArgumentException>(() => QcowImage.Open(pipe, new QcowOpenOptions { ReadOnly = true }));
    }

    private sealed class NonSeekable : MemoryStream
    {
        public override bool CanSeek => false;
    }
}
