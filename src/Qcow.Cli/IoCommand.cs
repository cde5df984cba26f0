// qcow io, or qcow called as qemu-io: qemu-io's command line. Options open the image as qemu-io
// opens it; the commands come from -c, or else from standard input, one per line, each line
// prompted as qemu-io prompts it. The exit status is 1 when the image does not open or any
// command failed.
using System;
using System.Collections.Generic;
using System.IO;

namespace Qcow.Cli;

internal static class IoCommand
{
    private static readonly string[] s_longWithValue = ["cmd", "format", "cache", "aio", "discard", "trace", "object"];

    private static readonly string[] s_longFlags = ["read-only", "snapshot", "nocache", "copy-on-read", "misalign", "native-aio", "force-share", "image-opts", "help", "version"];

    public static int Run(IReadOnlyList<string> args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        GetOpt opt = GetOpt.Parse(args, "cdftTi", "hVrsnCmkU", s_longWithValue, s_longFlags);
        if (opt.Has("h") || opt.Has("help"))
        {
            stdout.WriteLine($"Usage: {Cli.ProgramName} [OPTIONS]... [-c STRING]... [file]");
            return 0;
        }

        if (opt.Has("V") || opt.Has("version"))
        {
            stdout.WriteLine(Cli.VersionText(Cli.ProgramName));
            return 0;
        }

        if (opt.Positional.Count > 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        IoOpenFlags flags = IoOpenFlags.From(opt, imageOpts: opt.Has("image-opts"));
        using var session = new IoSession(stdout, stderr);
        // An image named on the command line that does not open ends qemu-io there.
        if (opt.Positional.Count == 1 && !session.Open(opt.Positional[0], flags, []))
        {
            return 1;
        }

        IReadOnlyList<string> commands = [.. opt.Values("c"), .. opt.Values("cmd")];
        if (commands.Count > 0)
        {
            foreach (string command in commands)
            {
                if (!session.Execute(command))
                {
                    break;
                }
            }
        }
        else
        {
            // qemu-io prompts before every line it reads, a terminal or not.
            while (true)
            {
                stdout.Write("qemu-io> ");
                stdout.Flush();
                if (stdin.ReadLine() is not { } line || !session.Execute(line))
                {
                    break;
                }
            }
        }

        return session.Failed ? 1 : 0;
    }
}

/// <summary>
/// How qemu-io opens an image (its top-level options, and the open command's): read-only,
/// snapshot mode, shared locks, the format, the cache, AIO and discard modes, driver options.
/// </summary>
internal sealed record IoOpenFlags(bool ReadOnly, bool Snapshot, bool ForceShare, string? Format, bool ImageOpts, bool IgnoreFlushes, bool Unmap, bool WriteThrough = false)
{
    /// <summary>The flags the options of <paramref name="opt"/> set (qemu-io's letters, and their long names at top level).</summary>
    public static IoOpenFlags From(GetOpt opt, bool imageOpts)
    {
        string cache = opt.Has("n") || opt.Has("nocache") ? "none" : opt.Value("t") ?? opt.Value("cache") ?? "writeback";
        bool ignoreFlushes = IgnoresFlushes(cache);

        if ((opt.Value("i") ?? opt.Value("aio")) is { } aio && aio is not ("threads" or "native" or "io_uring"))
        {
            throw new ArgumentException($"Invalid aio option: {aio}");
        }

        string discard = opt.Value("d") ?? opt.Value("discard") ?? "unmap";
        bool unmap = discard switch
        {
            "on" or "unmap" => true,
            "off" or "ignore" => false,
            _ => throw new ArgumentException($"Invalid discard option: {discard}"),
        };

        return new IoOpenFlags(
            opt.Has("r") || opt.Has("read-only"),
            opt.Has("s") || opt.Has("snapshot"),
            opt.Has("U") || opt.Has("force-share"),
            opt.Value("f") ?? opt.Value("format"),
            imageOpts,
            ignoreFlushes,
            unmap,
            WritesThrough(cache));
    }

    /// <summary>Whether a cache mode flushes after every write (writethrough, directsync).</summary>
    public static bool WritesThrough(string cache) => cache is "writethrough" or "directsync";

    /// <summary>Whether a cache mode QEMU knows skips flushes ("unsafe"); any other name is refused in QEMU's words.</summary>
    public static bool IgnoresFlushes(string cache) => cache switch
    {
        "none" or "off" or "writeback" or "writethrough" or "directsync" => false,
        "unsafe" => true,
        _ => throw new ArgumentException($"Invalid cache option: {cache}"),
    };
}
