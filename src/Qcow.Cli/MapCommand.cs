// qcow map: qemu-img map's extents (start, length, depth, present, zero, data, offset), merged
// as qemu-img merges them, in its human table or its JSON lines.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Qcow.IO;

namespace Qcow.Cli;

internal static class MapCommand
{
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "f", "U", ["output", "start-offset", "max-length"], ["force-share"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        bool json = VerbOptions.Json(opt);

        var settings = VerbOptions.Reading(opt, VerbOptions.WalkingCache);
        using IBlockDevice device = ImageOpener.Open(opt.Positional[0], opt.Value("f"), settings);
        if (device is QcowDevice { IsEncrypted: true })
        {
            throw FormatErrors.Unsupported(device.Path, "mapping encrypted guest data");
        }

        long start = opt.Value("start-offset") is { } s ? Sizes.Parse(s) : 0;
        long end = opt.Value("max-length") is { } m ? Math.Min(device.Length, start + Sizes.Parse(m)) : device.Length;
        stdout.Write(json ? "[" : "Offset          Length          Mapped to       File\n");
        bool first = true;
        foreach ((long at, BlockStatus e) in Extents(device, start, end))
        {
            if (json)
            {
                stdout.Write(first ? "" : ",\n");
                stdout.Write(Json(at, e));
            }
            else if (e.Data && !e.HasOffset)
            {
                stderr.WriteLine("qcow: File contains external, encrypted or compressed clusters.");
                return 1;
            }
            else if (e.Data && !e.Zero)
            {
                stdout.Write(FormattableString.Invariant($"{Hex(at),-16}{Hex(e.Length),-16}{Hex(e.HostOffset),-16}{e.File}\n"));
            }

            first = false;
        }

        stdout.Write(json ? "]\n" : "");
        return 0;
    }

    /// <summary>One extent as qemu-img map --output=json prints it.</summary>
    public static string Json(long start, BlockStatus e) =>
        FormattableString.Invariant($"{{ \"start\": {start}, \"length\": {e.Length}, \"depth\": {e.Depth}, \"present\": {Bool(e.Present)}, \"zero\": {Bool(e.Zero)}, \"data\": {Bool(e.Data)}")
        + (e.HasOffset ? FormattableString.Invariant($", \"offset\": {e.HostOffset}") : "")
        + "}";

    private static string Bool(bool b) => b ? "true" : "false";

    /// <summary>printf's %#x: 0x-prefixed, except 0.</summary>
    private static string Hex(long value) => value == 0 ? "0" : "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Extents from start to end, each as long as qemu-img map would print it.</summary>
    public static IEnumerable<(long Start, BlockStatus Status)> Extents(IBlockDevice device, long start, long end)
    {
        (long Start, BlockStatus Status)? current = null;
        for (long offset = start; offset < end;)
        {
            BlockStatus next = device.Status(offset, end - offset);
            if (current is { } c && Mergeable(c.Status, next))
            {
                current = (c.Start, c.Status with { Length = c.Status.Length + next.Length });
            }
            else
            {
                if (current is { } done)
                {
                    yield return done;
                }

                current = (offset, next);
            }

            offset += next.Length;
        }

        if (current is { } last)
        {
            yield return last;
        }
    }

    /// <summary>qemu-img's entry_mergeable: the same flags, depth and file, and host offsets that continue.</summary>
    private static bool Mergeable(BlockStatus a, BlockStatus b) =>
        a.Zero == b.Zero && a.Data == b.Data && a.Depth == b.Depth && a.Present == b.Present
        && a.File == b.File && a.HasOffset == b.HasOffset
        && (!a.HasOffset || a.HostOffset + a.Length == b.HostOffset);
}
