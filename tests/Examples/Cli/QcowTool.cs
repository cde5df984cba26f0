// The qcow tool run in-process, as a test runs it: exit code and both streams.
using System.IO;

namespace Qcow.Examples.CliTests;

internal static class QcowTool
{
    /// <summary>The current directory is the process's: tests that set it take turns.</summary>
    private static readonly object s_currentDirectory = new();

    public static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs qcow with <paramref name="folder"/> as the current directory, so that relative names print as qemu's tools print them.</summary>
    public static (int Code, string Stdout, string Stderr) RunIn(string folder, params string[] args)
    {
        lock (s_currentDirectory)
        {
            string before = Directory.GetCurrentDirectory();
            try
            {
                Directory.SetCurrentDirectory(folder);
                return Run(args);
            }
            finally
            {
                Directory.SetCurrentDirectory(before);
            }
        }
    }
}
