// The help and version options as qemu-img has them: --version and -V print the version, and
// every verb's -h and --help print the help; all exit 0, as qemu-img's do.
using System.IO;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class HelpAndVersionTests
{
    [OracleTheory]
    [InlineData("--version")]
    [InlineData("-V")]
    [InlineData("--help")]
    [InlineData("info", "--help")]
    [InlineData("convert", "-h")]
    [InlineData("check", "-q", "--help", "x.qcow2")]
    public void HelpAndVersion_ExitAsQemuImgExits(params string[] args)
    {
        using var dir = new TempDir();
        var theirs = Qemu.Run("qemu-img", dir.Path, args);
        var stdout = new StringWriter();
        int code = Cli.Cli.Run(args, stdout, new StringWriter());

        Assert.Equal(0, theirs.ExitCode);
        Assert.Equal(theirs.ExitCode, code);
        Assert.NotEqual("", stdout.ToString());
    }
}
