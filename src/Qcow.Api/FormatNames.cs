// The names qemu-img gives formats and modes, and the enums the API gives them.
using System;
using Qcow.IO;

namespace Qcow;

internal static class FormatNames
{
    public static string Name(QcowImageFormat format) => format switch
    {
        QcowImageFormat.Qcow2 => "qcow2",
        QcowImageFormat.Qcow => "qcow",
        _ => "raw",
    };

    public static string Name(QcowPreallocation preallocation) => preallocation.ToString().ToLowerInvariant();

    public static string Name(QcowCompat compat) => compat == QcowCompat.V0_10 ? "0.10" : "1.1";

    /// <summary>A format name the library itself produced (a device's FormatName).</summary>
    public static QcowImageFormat Parse(string name) => name switch
    {
        "qcow2" => QcowImageFormat.Qcow2,
        "qcow" => QcowImageFormat.Qcow,
        "raw" => QcowImageFormat.Raw,
        _ => throw new ArgumentException($"Unknown driver '{name}'"),
    };

    /// <summary>A format name a user gave, refused as qemu-img refuses it when Qcow cannot use it.</summary>
    public static QcowImageFormat ParseUserName(string name) =>
        ImageOpener.IsForeign(name)
            ? throw new NotSupportedException($"'{name}' is a format Qcow does not read (it reads qcow2, qcow and raw)")
            : Parse(name);
}
