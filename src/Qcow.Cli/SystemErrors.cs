// The system's error text as QEMU's tools print it (strerror), from .NET's I/O exceptions.
using System;

namespace Qcow.Cli;

internal static class SystemErrors
{
    /// <summary>The message without the " : 'path'" that .NET appends to the system's error text.</summary>
    public static string Text(string message)
    {
        int path = message.IndexOf(" : '", StringComparison.Ordinal);
        if (path < 0)
        {
            return message;
        }

        int end = message.IndexOf('\'', path + 4);
        return end < 0 ? message[..path] : message[..path] + message[(end + 1)..];
    }
}
