// Telling an image's format from its first bytes, as qemu-img probes it.
using System;
using System.IO;
using Qcow.IO;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// The format qemu-img would probe the file as: the QCOW magic with version 1 is
    /// <see cref="QcowImageFormat.Qcow"/>, with any other version <see cref="QcowImageFormat.Qcow2"/>
    /// (whose open then names the unsupported version); anything without a known magic is
    /// <see cref="QcowImageFormat.Raw"/>.
    /// </summary>
    /// <exception cref="QcowFormatException">The file starts with the magic of a format Qcow does not read (vmdk, vdi, vhdx, …), named in the message.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static QcowImageFormat Probe(string path) => ImageOpener.Probe(path) switch
    {
        "qcow" => QcowImageFormat.Qcow,
        "qcow2" => QcowImageFormat.Qcow2,
        _ => QcowImageFormat.Raw,
    };

    /// <summary>The format qemu-img names <paramref name="name"/>: "qcow2", "qcow" or "raw" (as in -f and -O).</summary>
    /// <exception cref="NotSupportedException">A format QEMU knows and Qcow does not read (vmdk, vdi, vhdx, …).</exception>
    /// <exception cref="ArgumentException">No format has that name (qemu-img's "Unknown driver").</exception>
    public static QcowImageFormat ParseFormat(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return FormatNames.ParseUserName(name);
    }
}
