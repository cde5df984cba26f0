// Who has a file open, for the message of a lock conflict: open-file-description locks do not
// record their owner, so the processes are found by their open files in /proc.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.IO;

internal static class LockHolders
{
    /// <summary>"qemu-io (pid 1234)" for each other process with the file open, or null when none can be seen.</summary>
    public static string? Describe(string path)
    {
        string target = Path.GetFullPath(path);
        var holders = new List<string>();
        try
        {
            foreach (string process in Directory.EnumerateDirectories("/proc"))
            {
                string pid = Path.GetFileName(process);
                if (!int.TryParse(pid, out int id) || id == Environment.ProcessId || !HasOpen(process, target))
                {
                    continue;
                }

                holders.Add($"{ReadName(process)} (pid {pid})");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return holders.Count == 0 ? null : string.Join(", ", holders);
    }

    private static bool HasOpen(string process, string target)
    {
        try
        {
            foreach (string fd in Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd")))
            {
                if (new FileInfo(fd).LinkTarget == target)
                {
                    return true;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A process that ended or hides its files meanwhile is not a holder we can name.
        }

        return false;
    }

    private static string ReadName(string process)
    {
        try
        {
            return File.ReadAllText(Path.Combine(process, "comm")).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "a process";
        }
    }
}
