// Persistent bitmaps QEMU wrote: info lists them as qemu-img does, check counts their clusters as
// qemu-img check does, and a read-write open, which cannot keep them up to date, drops them
// whole: the image stays clean for qemu-img and the guest data is untouched.
using System.IO;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class BitmapTests
{
    [OracleFact]
    public void BitmapsQemuWrote_AreListed_Counted_AndDroppedCleanlyOnWrite()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "b.qcow2", "16M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "b.qcow2", "first");
        Qemu.Io(dir.Path, "b.qcow2", "write -P 1 0 1M");
        Qemu.Ok("qemu-img", dir.Path, "bitmap", "--add", "-g", "128k", "--disable", "b.qcow2", "second");
        string image = dir.File("b.qcow2");

        foreach (string[] args in new[] { new[] { "info", image }, ["info", "--output=json", image], ["check", image], ["check", "--output=json", image] })
        {
            var theirs = Qemu.Run("qemu-img", dir.Path, args);
            var stdout = new StringWriter();
            Assert.Equal(theirs.ExitCode, Cli.Cli.Run(args, stdout, new StringWriter()));
            Assert.Equal(theirs.Stdout, stdout.ToString());
        }

        using (QcowImage writable = QcowImage.Open(image))
        {
            writable.Write(2 << 20, new byte[4096]);
        }

        Qemu.AssertClean(dir.Path, "b.qcow2");
        Assert.DoesNotContain("bitmaps", Qemu.Ok("qemu-img", dir.Path, "info", "b.qcow2"));
        Qemu.Io(dir.Path, "b.qcow2", "read -P 1 0 1M");
    }
}
