// qemu-io's commands, with its options, its checks and its words: read, write and their vector
// and AIO forms (done at once: every request completes before the next command), discard,
// flush, truncate, length, info, map, alloc, open, close, reopen, sigraise, abort, sleep.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Qcow.Cli;

internal static class IoCommands
{
    /// <summary>qemu-io writes 0xcd when no pattern is given.</summary>
    private const byte DefaultPattern = 0xcd;

    /// <summary>QEMU's largest request (BDRV_REQUEST_MAX_BYTES).</summary>
    private const long MaxRequestBytes = int.MaxValue & ~511L;

    /// <summary>Each command's usage line, as help and a bad option print it.</summary>
    private static readonly Dictionary<string, string> s_usage = new(StringComparer.Ordinal)
    {
        ["read"] = "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset",
        ["readv"] = "readv [-Cqv] [-P pattern] off len [len..] -- reads a number of bytes at a specified offset",
        ["aio_read"] = "aio_read [-Ciqv] [-P pattern] off len [len..] -- asynchronously reads a number of bytes",
        ["write"] = "write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset",
        ["writev"] = "writev [-Cfq] [-P pattern] off len [len..] -- writes a number of bytes at a specified offset",
        ["aio_write"] = "aio_write [-Cfiquz] [-P pattern] off len [len..] -- asynchronously writes a number of bytes",
        ["discard"] = "discard [-Cq] off len -- discards a number of bytes at a specified offset",
        ["open"] = "open [-rsCnkU] [-t cache] [-d discard] [-o options] [path] -- open the file specified by path",
        ["reopen"] = "reopen [(-r|-w)] [-c cache] [-o options] -- reopens an image with new options",
        ["truncate"] = "truncate [-m prealloc_mode] off -- truncates the current file at the given offset",
        ["alloc"] = "alloc offset [count] -- checks if offset is allocated in the file",
    };

    public static void Run(IoSession s, string[] words)
    {
        string name = words[0] switch
        {
            "r" => "read",
            "w" => "write",
            "o" => "open",
            "c" => "close",
            "d" => "discard",
            "f" => "flush",
            "t" => "truncate",
            "i" => "info",
            "len" => "length",
            var other => other,
        };
        var args = new ArraySegment<string>(words, 1, words.Length - 1);
        try
        {
            Dispatch(s, words[0], name, args);
        }
        catch (IOException e)
        {
            // qemu-io names the request and the system's error, and goes on with the next command.
            throw new IoCommandException($"{RequestName(name)} failed: {SystemErrors.Text(e.Message)}");
        }
        catch (QcowFormatException e)
        {
            // QEMU's driver fails the request with EIO, announcing a fatal corruption event as it
            // marks the image; the image then answers no more requests (QEMU drops its driver).
            if (e.MarksImageCorrupt)
            {
                s.Error.WriteLine($"qcow2: Marking image as corrupt: {e.Detail}; further corruption events will be suppressed");
            }

            string reason = e.Kind == QcowFormatErrorKind.OverlapsMetadata && !e.MarksImageCorrupt ? "No medium found" : "Input/output error";
            throw new IoCommandException($"{RequestName(name)} failed: {reason}");
        }
    }

    /// <summary>The request qemu-io names when a command's I/O fails (the AIO forms report as the vector ones).</summary>
    private static string RequestName(string command) => command switch
    {
        "aio_read" => "readv",
        "aio_write" => "writev",
        _ => command,
    };

    private static void Dispatch(IoSession s, string typed, string name, IReadOnlyList<string> args)
    {
        switch (name)
        {
            case "read":
                Read(s, Options(name, args, "Pls", "abCqvp", 2));
                break;
            case "readv" or "aio_read":
                ReadVector(s, Options(name, args, "P", "Cqvi", 2));
                break;
            case "write":
                Write(s, Options(name, args, "Ps", "bcCfnquzp", 2));
                break;
            case "writev" or "aio_write":
                WriteVector(s, name, Options(name, args, "P", "Cfqiuz", 2));
                break;
            case "aio_flush":
                Options(name, args, "", "", 0, 0);
                break;
            case "discard":
                Discard(s, Options(name, args, "", "Cq", 2));
                break;
            case "flush":
                Options(name, args, "", "", 0, 0);
                s.Current.Flush();
                break;
            case "truncate":
                Truncate(s, Options(name, args, "m", "", 1));
                break;
            case "length":
                Options(name, args, "", "", 0, 0);
                s.Out.WriteLine(Sizes.Io(s.Current.Length));
                break;
            case "info":
                Options(name, args, "", "", 0, 0);
                Info(s, s.Out);
                break;
            case "map":
                Options(name, args, "", "", 0, 0);
                Map(s.Current, s.Out);
                break;
            case "alloc":
                Alloc(s.Current, Options(name, args, "", "", 1, 2), s.Out);
                break;
            case "open":
                OpenCommand(s, Options(name, args, "tdio", "rsCnkU", 0));
                break;
            case "close":
                Options(name, args, "", "", 0, 0);
                s.Close();
                break;
            case "reopen":
                Reopen(s, Options(name, args, "co", "rw", 0));
                break;
            case "sigraise":
                Raise(s, (int)Number(Options(name, args, "", "", 1, 1).Positional[0]));
                break;
            case "abort":
                Options(name, args, "", "", 0, 0);
                Raise(s, Signals.Abort);
                break;
            case "sleep":
                Thread.Sleep((int)Number(Options(name, args, "", "", 1, 1).Positional[0]));
                break;
            default:
                throw new IoCommandException($"command \"{typed}\" not found", toStderr: true);
        }
    }

    /// <summary>A command's options, as qemu-io checks them: the count of arguments first, then getopt's letters.</summary>
    private static GetOpt Options(string name, IReadOnlyList<string> args, string withValue, string flags, int min, int max = -1)
    {
        if (args.Count < min || (max >= 0 && args.Count > max))
        {
            string expected = max < 0 ? $"at least {min}" : min == max ? $"{min}" : $"between {min} and {max}";
            throw new IoCommandException($"bad argument count {args.Count} to {name}, expected {expected} arguments", toStderr: true);
        }

        try
        {
            return GetOpt.Parse(args, withValue, flags);
        }
        catch (UsageException e)
        {
            throw new IoCommandException($"{name}: {e.Message}\n{s_usage.GetValueOrDefault(name, name)}", toStderr: true);
        }
    }

    /// <summary>A number as qemu-io's cvtnum reads it, refused in its words.</summary>
    private static long Number(string text)
    {
        try
        {
            return Sizes.Parse(text);
        }
        catch (UsageException)
        {
            throw new IoCommandException($"Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- {text}");
        }
    }

    /// <summary>A pattern byte; anything else (a negative number, text) is refused as qemu-io refuses it.</summary>
    private static byte Pattern(string text)
    {
        long value;
        try
        {
            value = Sizes.Parse(text);
        }
        catch (UsageException)
        {
            value = -1;
        }

        return value is >= 0 and <= 255 ? (byte)value : throw new IoCommandException($"{text} is not a valid pattern byte");
    }

    /// <summary>The offset and length of a request, checked as qemu-io checks them; past the end of the image is the I/O error QEMU's block layer gives.</summary>
    private static (long Offset, long Length) Request(IoSession s, string request, string offsetText, string lengthText)
    {
        long offset = Number(offsetText);
        long length = Number(lengthText);
        if (length > MaxRequestBytes)
        {
            throw new IoCommandException($"length cannot exceed {MaxRequestBytes}, given {lengthText}");
        }

        if (offset + length > s.Current.Length)
        {
            throw new IoCommandException($"{request} failed: Input/output error");
        }

        return (offset, length);
    }

    private static void ThrowUnlessWritable(IoSession s)
    {
        if (!s.Current.CanWrite)
        {
            throw new IoCommandException($"{Cli.ProgramName}: Block node is read-only", toStderr: true);
        }
    }

    private static void Read(IoSession s, GetOpt opt)
    {
        if (opt.Positional.Count != 2)
        {
            throw new IoCommandException(s_usage["read"]);
        }

        if (opt.Has("b"))
        {
            throw new IoCommandException("read failed: Operation not supported");
        }

        (long offset, long length) = Request(s, "read", opt.Positional[0], opt.Positional[1]);
        long patternOffset = opt.Value("s") is { } so ? Number(so) : 0;
        long patternLength = opt.Value("l") is { } lo ? Number(lo) : length - patternOffset;
        if (opt.Value("P") is not null && (patternOffset < 0 || patternLength < 0 || patternOffset + patternLength > length))
        {
            throw new IoCommandException("pattern verification range exceeds end of read data");
        }

        var watch = Stopwatch.StartNew();
        byte[] buffer = new byte[length];
        s.Current.Read(offset, buffer);
        watch.Stop();
        bool verified = opt.Value("P") is not { } p || Verify(s, buffer.AsSpan((int)patternOffset, (int)patternLength), Pattern(p), offset + patternOffset);
        if (opt.Has("v"))
        {
            Dump(s.Out, offset, buffer);
        }

        Report(s, opt, "read", offset, length, watch);
        if (!verified)
        {
            s.Failed = true;
        }
    }

    private static bool Verify(IoSession s, ReadOnlySpan<byte> data, byte pattern, long at)
    {
        if (data.IndexOfAnyExcept(pattern) < 0)
        {
            return true;
        }

        s.Out.WriteLine($"Pattern verification failed at offset {at}, {data.Length} bytes");
        return false;
    }

    /// <summary>readv and aio_read: one read of the lengths' sum, checked against the pattern whole.</summary>
    private static void ReadVector(IoSession s, GetOpt opt)
    {
        (long offset, long length) = VectorRequest(s, "readv", opt);
        var watch = Stopwatch.StartNew();
        byte[] buffer = new byte[length];
        s.Current.Read(offset, buffer);
        watch.Stop();
        bool verified = opt.Value("P") is not { } p || Verify(s, buffer, Pattern(p), offset);
        if (opt.Has("v"))
        {
            Dump(s.Out, offset, buffer);
        }

        Report(s, opt, "read", offset, length, watch);
        if (!verified)
        {
            s.Failed = true;
        }
    }

    private static (long Offset, long Length) VectorRequest(IoSession s, string request, GetOpt opt)
    {
        if (opt.Positional.Count < 2)
        {
            throw new IoCommandException($"bad argument count {opt.Positional.Count} to {request}, expected at least 2 arguments", toStderr: true);
        }

        long total = opt.Positional.Skip(1).Sum(Number);
        return Request(s, request, opt.Positional[0], total.ToString(CultureInfo.InvariantCulture));
    }

    private static void Write(IoSession s, GetOpt opt)
    {
        if (opt.Positional.Count != 2)
        {
            throw new IoCommandException(s_usage["write"]);
        }

        bool zeroes = opt.Has("z");
        if (zeroes && (opt.Has("P") || opt.Has("s")))
        {
            throw new IoCommandException("-z supports neither a pattern nor a source file");
        }

        if (opt.Has("u") && !zeroes)
        {
            throw new IoCommandException("-u requires -z to be specified");
        }

        if (opt.Has("c") && zeroes)
        {
            throw new IoCommandException("-c and -z cannot be specified at the same time");
        }

        if (opt.Has("b"))
        {
            throw new IoCommandException("write failed: Operation not supported");
        }

        long offset = Number(opt.Positional[0]);
        long length = Number(opt.Positional[1]);
        if (opt.Has("c"))
        {
            if (length % 512 != 0)
            {
                throw new IoCommandException($"{length} is not a sector-aligned value for 'count'");
            }

            if (offset % 512 != 0)
            {
                throw new IoCommandException($"{offset} is not a sector-aligned value for 'offset'");
            }
        }

        ThrowUnlessWritable(s);
        (offset, length) = Request(s, "write", opt.Positional[0], opt.Positional[1]);
        var watch = Stopwatch.StartNew();
        if (zeroes)
        {
            WriteZeroes(s, offset, length, mayUnmap: opt.Has("u") && s.Flags!.Unmap);
        }
        else
        {
            byte[] buffer = opt.Value("s") is { } source ? SourceBytes(source, length) : Filled(length, opt.Value("P") is { } p ? Pattern(p) : DefaultPattern);
            if (opt.Has("c"))
            {
                WriteCompressed(s.Current, offset, buffer);
            }
            else
            {
                WriteData(s, offset, buffer);
            }
        }

        if (opt.Has("f"))
        {
            s.Current.Flush();
        }

        watch.Stop();
        Report(s, opt, "wrote", offset, length, watch);
    }

    /// <summary>writev and aio_write: one write of the lengths' sum.</summary>
    private static void WriteVector(IoSession s, string name, GetOpt opt)
    {
        bool zeroes = name == "aio_write" && opt.Has("z");
        ThrowUnlessWritable(s);
        (long offset, long length) = VectorRequest(s, "writev", opt);
        var watch = Stopwatch.StartNew();
        if (zeroes)
        {
            WriteZeroes(s, offset, length, mayUnmap: opt.Has("u") && s.Flags!.Unmap);
        }
        else
        {
            WriteData(s, offset, Filled(length, opt.Value("P") is { } p ? Pattern(p) : DefaultPattern));
        }

        if (opt.Has("f"))
        {
            s.Current.Flush();
        }

        watch.Stop();
        Report(s, opt, "wrote", offset, length, watch);
    }

    private static byte[] Filled(long length, byte pattern)
    {
        byte[] buffer = new byte[length];
        buffer.AsSpan().Fill(pattern);
        return buffer;
    }

    /// <summary>write -s: the buffer is the source file's first bytes.</summary>
    private static byte[] SourceBytes(string path, long length)
    {
        byte[] buffer = new byte[length];
        using FileStream file = File.OpenRead(path);
        if (file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < length)
        {
            throw new IoCommandException($"Failed to read all bytes from {path}");
        }

        return buffer;
    }

    /// <summary>A zero write, cut to blkdebug's limits when it stands on top.</summary>
    private static void WriteZeroes(IoSession s, long offset, long length, bool mayUnmap)
    {
        if (s.Target?.Limits is { } limits)
        {
            limits.WriteZeroes(s.Current, offset, length, mayUnmap);
        }
        else
        {
            s.Current.WriteZeroes(offset, length, mayUnmap);
        }
    }

    /// <summary>
    /// A data write; under the compress filter, the whole clusters it touches are read, merged
    /// and written compressed (QEMU's block layer aligns the request to the filter's cluster-sized
    /// alignment the same way).
    /// </summary>
    private static void WriteData(IoSession s, long offset, byte[] buffer)
    {
        if (!s.CompressWrites)
        {
            s.Current.Write(offset, buffer);
            return;
        }

        long cs = s.Current.Info.ClusterSize;
        long start = offset / cs * cs;
        long end = Math.Min((offset + buffer.Length + cs - 1) / cs * cs, s.Current.Length);
        byte[] clusters = new byte[end - start];
        s.Current.Read(start, clusters);
        buffer.CopyTo(clusters.AsSpan((int)(offset - start)));
        WriteCompressed(s.Current, start, clusters);
    }

    /// <summary>qemu-io's write -c: whole clusters (the last may end with the image), each compressed.</summary>
    private static void WriteCompressed(QcowImage image, long offset, byte[] buffer)
    {
        try
        {
            image.WriteCompressed(offset, buffer);
        }
        catch (NotSupportedException)
        {
            throw new IoCommandException("write failed: Operation not supported");
        }
        catch (ArgumentException)
        {
            throw new IoCommandException("write failed: Invalid argument");
        }
    }

    private static void Discard(IoSession s, GetOpt opt)
    {
        ThrowUnlessWritable(s);
        (long offset, long length) = Request(s, "discard", opt.Positional[0], opt.Positional[1]);
        var watch = Stopwatch.StartNew();
        if (s.Flags!.Unmap)
        {
            if (s.Target?.Limits is { } limits)
            {
                limits.Discard(s.Current, offset, length);
            }
            else
            {
                s.Current.Discard(offset, length);
            }
        }

        watch.Stop();
        Report(s, opt, "discard", offset, length, watch);
    }

    /// <summary>truncate [-m prealloc] SIZE: the image resized in place (shrinking too), and opened again as it was.</summary>
    private static void Truncate(IoSession s, GetOpt opt)
    {
        ThrowUnlessWritable(s);
        long size = Number(opt.Positional[0]);
        QcowPreallocation preallocation = (opt.Value("m") ?? "off") switch
        {
            "off" => QcowPreallocation.Off,
            "metadata" => QcowPreallocation.Metadata,
            "falloc" => QcowPreallocation.Falloc,
            "full" => QcowPreallocation.Full,
            var other => throw new IoCommandException($"Invalid preallocation mode: '{other}'"),
        };
        s.Current.Flush();
        s.Reopen(s.Flags!, file => QcowImage.Resize(file, size, new QcowResizeOptions { Shrink = true, Preallocation = preallocation }));
    }

    private static void OpenCommand(IoSession s, GetOpt opt)
    {
        if (opt.Positional.Count > 1)
        {
            throw new IoCommandException(s_usage["open"]);
        }

        IoOpenFlags flags = IoOpenFlags.From(opt, imageOpts: false);
        IReadOnlyList<string> options = opt.Values("o");
        if (opt.Positional.Count == 0 && !options.Any(o => o.Contains("filename=", StringComparison.Ordinal)))
        {
            throw new IoCommandException(s_usage["open"]);
        }

        s.Open(opt.Positional.Count == 1 ? opt.Positional[0] : "", opt.Positional.Count == 1 ? flags : flags with { ImageOpts = true }, options);
    }

    /// <summary>reopen [-r|-w] [-c cache] [-o options]: the same image, opened again read-only or read-write.</summary>
    private static void Reopen(IoSession s, GetOpt opt)
    {
        IoOpenFlags current = s.Flags ?? throw new IoCommandException("no file open, try 'help open'", toStderr: true);
        if (opt.Has("r") && opt.Has("w"))
        {
            throw new IoCommandException("Only one -r/-w option may be given", toStderr: true);
        }

        ReopenRules.Check(s, opt);
        bool ignoreFlushes = opt.Value("c") is { } cache ? IoOpenFlags.IgnoresFlushes(cache) : current.IgnoreFlushes;
        bool writeThrough = opt.Value("c") is { } mode ? IoOpenFlags.WritesThrough(mode) : current.WriteThrough;
        s.Reopen(current with { ReadOnly = opt.Has("r") || (current.ReadOnly && !opt.Has("w")), IgnoreFlushes = ignoreFlushes, WriteThrough = writeThrough });
    }

    /// <summary>sigraise and abort: the signal is raised in this process, as qemu-io raises it (9 kills it with nothing flushed).</summary>
    private static void Raise(IoSession s, int signal)
    {
        s.Out.Flush();
        s.Error.Flush();
        Signals.Raise(signal);
    }

    /// <summary>qemu-io's map: runs the image itself allocates (its backing file aside), and runs it does not.</summary>
    private static void Map(QcowImage image, TextWriter stdout)
    {
        for (long offset = 0; offset < image.Length;)
        {
            bool allocated = AllocatedHere(image, offset, image.Length, out long length);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Sizes.Io(length)} (0x{length:x}) bytes {(allocated ? "   " : "not")} allocated at offset {Sizes.Io(offset)} (0x{offset:x})"));
            offset += length;
        }
    }

    /// <summary>qemu-io's alloc OFFSET [LENGTH]: how many of the bytes the image itself allocates.</summary>
    private static void Alloc(QcowImage image, GetOpt opt, TextWriter stdout)
    {
        long offset = Number(opt.Positional[0]);
        long count = Math.Min(opt.Positional.Count == 2 ? Number(opt.Positional[1]) : 512, image.Length - offset);
        long end = offset + count;
        long allocated = 0;
        for (long at = offset; at < end;)
        {
            allocated += AllocatedHere(image, at, end, out long length) ? length : 0;
            at += length;
        }

        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{allocated}/{count} bytes allocated at offset {Sizes.Io(offset)}"));
    }

    /// <summary>Whether the image itself (not its backing file) allocates the bytes at offset, and for how long that holds (up to end).</summary>
    private static bool AllocatedHere(QcowImage image, long offset, long end, out long length)
    {
        QcowExtent first = image.GetBlockStatus(offset, end - offset);
        bool allocated = first.Depth == 0 && first.Present;
        length = first.Length;
        while (offset + length < end)
        {
            QcowExtent next = image.GetBlockStatus(offset + length, end - offset - length);
            if ((next.Depth == 0 && next.Present) != allocated)
            {
                break;
            }

            length += next.Length;
        }

        return allocated;
    }

    /// <summary>qemu-io's info: format, cluster size, where VM state would go, and the format's own facts.</summary>
    private static void Info(IoSession s, TextWriter stdout)
    {
        if (s.Target is { Protocol: "null-co" or "null-aio", Formats: [] } target)
        {
            // A protocol node open by itself: qemu-io names its driver as format and as protocol,
            // and the null drivers give no further facts.
            stdout.WriteLine($"format name: {target.Protocol}");
            stdout.WriteLine($"format name: {target.Protocol}");
            return;
        }

        QcowInfo info = s.Current.Info;
        stdout.WriteLine($"format name: {VerbOptions.Name(info.Format)}");
        stdout.WriteLine($"cluster size: {Sizes.Io(info.ClusterSize)}");
        stdout.WriteLine($"vm state offset: {Sizes.Io(info.VmStateOffset)}");
        if (info.Format == QcowImageFormat.Qcow2)
        {
            stdout.Write(InfoCommand.FormatSpecific(info));
        }
    }

    /// <summary>qemu-io's statistics after a request (none with -q; one machine-readable line with -C).</summary>
    private static void Report(IoSession s, GetOpt opt, string verb, long offset, long length, Stopwatch watch)
    {
        if (opt.Has("q"))
        {
            return;
        }

        double seconds = Math.Max(watch.Elapsed.TotalSeconds, 1e-6);
        TimeSpan t = watch.Elapsed;
        if (opt.Has("C"))
        {
            s.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{length},1,{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}.{t.Milliseconds / 10:00},{length / seconds:0.000},{1 / seconds:0.000}"));
            return;
        }

        string time = t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}:{t.Seconds:00}.{t.Milliseconds / 10:00}" : $"{t.Seconds:00}.{t.Milliseconds / 10:00}";
        s.Out.WriteLine($"{verb} {length}/{length} bytes at offset {offset}");
        s.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Sizes.Io(length)}, 1 ops; {time} sec ({Sizes.Io((long)(length / seconds))}/sec and {1 / seconds:0.0000} ops/sec)"));
    }

    /// <summary>qemu-io's -v dump: offset, 16 hex bytes, their printable characters.</summary>
    private static void Dump(TextWriter stdout, long offset, byte[] bytes)
    {
        for (int at = 0; at < bytes.Length; at += 16)
        {
            var line = new StringBuilder();
            line.Append(CultureInfo.InvariantCulture, $"{offset + at:x8}:  ");
            int n = Math.Min(16, bytes.Length - at);
            for (int i = 0; i < n; i++)
            {
                line.Append(CultureInfo.InvariantCulture, $"{bytes[at + i]:x2} ");
            }

            line.Append(' ');
            for (int i = 0; i < n; i++)
            {
                char c = (char)bytes[at + i];
                line.Append(c is >= ' ' and <= '~' ? c : '.');
            }

            stdout.WriteLine(line.ToString());
        }
    }

    /// <summary>Signals raised in this process through libc, as qemu-io's sigraise raises them.</summary>
    private static class Signals
    {
        public const int Abort = 6;

        public static void Raise(int signal)
        {
            _ = Kill(Environment.ProcessId, signal);
            // A signal that does not end the process (one ignored or caught) leaves qemu-io running.
        }

        [DllImport("libc", EntryPoint = "kill")]
        private static extern int Kill(int pid, int signal);
    }
}
