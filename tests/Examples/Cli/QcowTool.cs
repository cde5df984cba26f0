// The qcow tool run in-process, as a test runs it: exit code and both streams.
using System.IO;

namespace Qcow.Examples.CliTests;

internal static class QcowTool
{
    public static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
