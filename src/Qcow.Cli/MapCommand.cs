// qcow map: qemu-img map's extents (start, length, depth, present, zero, data, offset), in its
// human table or its JSON lines.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Qcow.Cli;

internal static class MapCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "f", "U", ["output", "start-offset", "max-length"], ["force-share", "image-opts"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        bool json = VerbOptions.Json(opt);
        string path = opt.Positional[0];
        using QcowImage image = VerbOptions.Open(path, opt.Value("f"), (file, format) => VerbOptions.Reading(opt, file, format, VerbOptions.WalkingCache), imageOpts: opt.Has("image-opts"));
        long start = opt.Value("start-offset") is { } s ? Sizes.Parse(s) : 0;
        long? length = opt.Value("max-length") is { } m ? Sizes.Parse(m) : null;
        IEnumerable<QcowExtent> extents = image.Map(start, length);
        stdout.Write(json ? "[" : "Offset          Length          Mapped to       File\n");
        bool first = true;
        foreach (QcowExtent e in extents)
        {
            if (json)
            {
                stdout.Write(first ? "" : ",\n");
                stdout.Write(Json(e));
            }
            else if (e.Data && e.HostOffset is null)
            {
                stderr.WriteLine($"{Cli.ProgramName}: File contains external, encrypted or compressed clusters.");
                return 1;
            }
            else if (e.Data && !e.Zero)
            {
                stdout.Write(FormattableString.Invariant($"{Hex(e.Offset),-16}{Hex(e.Length),-16}{Hex(e.HostOffset!.Value),-16}{e.File}\n"));
            }

            first = false;
        }

        stdout.Write(json ? "]\n" : "");
        return 0;
    }

    /// <summary>One extent as qemu-img map --output=json prints it.</summary>
    private static string Json(QcowExtent e) =>
        FormattableString.Invariant($"{{ \"start\": {e.Offset}, \"length\": {e.Length}, \"depth\": {e.Depth}, \"present\": {Bool(e.Present)}, \"zero\": {Bool(e.Zero)}, \"data\": {Bool(e.Data)}")
        + (e.HostOffset is { } host ? FormattableString.Invariant($", \"offset\": {host}") : "")
        + "}";

    private static string Bool(bool b) => b ? "true" : "false";

    /// <summary>printf's %#x: 0x-prefixed, except 0.</summary>
    private static string Hex(long value) => value == 0 ? "0" : "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}
