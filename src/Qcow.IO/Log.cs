// The shell's log messages, as source-generated LoggerMessage methods.
using Microsoft.Extensions.Logging;

namespace Qcow.IO;

internal static partial class Log
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "{Image}: refcount table at 0x{Offset:x} is full; growing it")]
    public static partial void LogRefcountTableGrowth(this ILogger logger, string image, ulong offset);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Image}: the image was dirty; its refcounts are repaired from the references the tables hold ({Fixed} repaired)")]
    public static partial void LogRefcountsRepaired(this ILogger logger, string image, long @fixed);
}
