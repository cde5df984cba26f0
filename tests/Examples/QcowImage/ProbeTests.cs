// QcowImage.Probe names an image's format as qemu-img probes it, and names a format Qcow does
// not read rather than calling it raw.
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class ProbeTests
{
    [OracleTheory]
    [InlineData("raw", QcowImageFormat.Raw)]
    [InlineData("qcow", QcowImageFormat.Qcow)]
    [InlineData("qcow2", QcowImageFormat.Qcow2)]
    public void Probe_NamesTheFormatQemuImgCreated(string format, QcowImageFormat expected)
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", format, "x.img", "1M");

        Assert.Equal(expected, QcowImage.Probe(dir.File("x.img")));
    }

    [OracleFact]
    public void Probe_OfAFormatQcowDoesNotRead_NamesIt()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "vmdk", "x.vmdk", "1M");

        var e = Assert.Throws<QcowFormatException>(() => QcowImage.Probe(dir.File("x.vmdk")));
        Assert.Contains("vmdk", e.Message);
    }

    [Fact]
    public void Create_OfARawImage_MakesTheDisk_AndProbesAsRaw()
    {
        using var dir = new TempDir();
        using (QcowImage image = QcowImage.Create(dir.File("x.img"), new QcowCreateOptions { Size = 1000, Format = QcowImageFormat.Raw }))
        {
            Assert.Equal((QcowImageFormat.Raw, 1024L), (image.Format, image.Length));
            image.Write(1000, [1, 2, 3]);
        }

        Assert.Equal(QcowImageFormat.Raw, QcowImage.Probe(dir.File("x.img")));
        Assert.Equal(new byte[] { 1, 2, 3 }, System.IO.File.ReadAllBytes(dir.File("x.img"))[1000..1003]);
    }

    [Fact]
    public void Create_OfARawImageWithABackingFile_IsRefused_BeforeAnyFileIsMade()
    {
        using var dir = new TempDir();

        Assert.Throws<System.ArgumentException>(() => QcowImage.Create(dir.File("x.img"), new QcowCreateOptions { Size = 1 << 20, Format = QcowImageFormat.Raw, BackingFile = "base" }));
        Assert.False(System.IO.File.Exists(dir.File("x.img")));
    }
}
