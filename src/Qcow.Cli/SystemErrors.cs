// The system's error text as QEMU's tools print it (strerror), from .NET's I/O exceptions.
using System;
using System.IO;

namespace Qcow.Cli;

internal static class SystemErrors
{
    /// <summary>The system's error message, without the " : 'path'" that .NET appends to it.</summary>
    public static string Text(IOException e)
    {
        int path = e.Message.IndexOf(" : '", StringComparison.Ordinal);
        return path < 0 ? e.Message : e.Message[..path];
    }
}
