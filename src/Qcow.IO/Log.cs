// The shell's log messages, as source-generated LoggerMessage methods.
using Microsoft.Extensions.Logging;

namespace Qcow.IO;

internal static partial class Log
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "{Image}: refcount table at 0x{Offset:x} is full; growing it")]
    public static partial void LogRefcountTableGrowth(this ILogger logger, string image, ulong offset);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Image}: refcounts rebuilt from the references the tables hold, new refcount table at 0x{Offset:x} ({Problems} problems found in the tables)")]
    public static partial void LogRefcountsRebuilt(this ILogger logger, string image, ulong offset, long problems);
}
