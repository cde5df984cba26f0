// The qcow tool's entry point: picks the verb and turns every failure into one line on stderr.
using System;
using System.IO;
using System.Linq;
using Qcow.Cli;

return Cli.Start(args);

namespace Qcow.Cli
{
    internal static class Cli
    {
        private const string Usage = """
            usage: qcow VERB [options] ...
            qemu-img's verbs, with its syntax:
              create [-q] [-f fmt] [-b backing [-F fmt]] [-u] [-o options] FILE [SIZE]
              info [-f fmt] [--output=human|json] [-U] FILE
              check [-f fmt] [--output=human|json] [-r leaks|all] [-U] [-q] FILE
              measure [--output=human|json] [-O fmt] [-o options] [--size N | [-f fmt] FILE]
              compare [-f fmt] [-F fmt] [-s] [-p] [-q] [-U] FILE1 FILE2
              dd [-f fmt] [-O fmt] [-U] [bs=N] [count=N] [skip=N] if=IN of=OUT
              bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] [-o offset] [--pattern=N] [-q] [-s size] [-S step] [-t cache] [-w] [-U] FILE
              amend [-f fmt] -o compat=..,lazy_refcounts=..,refcount_bits=.. FILE
              snapshot [-f fmt] [-U] [-q] [-l | -a SNAPSHOT | -c SNAPSHOT | -d SNAPSHOT] FILE
              rebase [-f fmt] [-p] [-q] [-u] [-U] -b BACKING [-F fmt] FILE
              commit [-f fmt] [-b base] [-d] [-p] [-q] [-r rate] [-t cache] FILE
              bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file [-F source_fmt]] [-g granularity] [--image-opts | -f fmt] FILE BITMAP
              resize [-f fmt] [--preallocation=off|metadata|falloc|full] [-q] [--shrink] FILE [+|-]SIZE
              map [-f fmt] [--output=human|json] [--start-offset=N] [--max-length=N] [-U] FILE
              convert [-f fmt] [-O fmt] [-o options] [-l snapshot] [-t cache] [-p] [-c] [-n] [--target-is-zero] [--bitmaps [--skip-broken-bitmaps]] [-S size] [-m N] [-W] [-B backing [-F fmt]] [-U] SRC... DST
            teaching verbs:
              explain [-f fmt] [--output=human|json] FILE OFFSET
              layout [--svg OUT] [-U] FILE
              geometry [-o cluster_size=..,refcount_bits=..,extended_l2=..] [--output=human|json] SIZE
            qemu-io's commands (or call qcow as qemu-io):
              io [-f fmt] [-r] [-s] [-U] [-t cache] [-i aio] [-d discard] [--image-opts] [-c CMD]... [FILE]
                 without -c, commands are read from standard input
            """;

        /// <summary>
        /// The name messages begin with: qemu-img or qemu-io when qcow is called by that name (a
        /// symbolic link, or argv[0] as a wrapper passes it), else qcow.
        /// </summary>
        public static string ProgramName { get; private set; } = "qcow";

        /// <summary>The process's entry: called as qemu-io, the arguments are qemu-io's; otherwise a verb comes first.</summary>
        public static int Start(string[] args)
        {
            string name = InvokedAs();
            ProgramName = name is "qemu-img" or "qemu-io" ? name : "qcow";
            return ProgramName == "qemu-io"
                ? Guarded(() => IoCommand.Run(args, Console.In, Console.Out, Console.Error), Console.Error)
                : Run(args, Console.Out, Console.Error);
        }

        /// <summary>What --version prints, for the program called <paramref name="name"/>.</summary>
        public static string VersionText(string name) =>
            $"{name} version {typeof(Cli).Assembly.GetName().Version?.ToString(3)} (qcow, in QEMU 7.2's place)";

        /// <summary>The base name of argv[0] as the process was started (Linux keeps it in /proc/self/cmdline).</summary>
        private static string InvokedAs()
        {
            try
            {
                string first = File.ReadAllText("/proc/self/cmdline").Split('\0')[0];
                return Path.GetFileName(first);
            }
            catch (IOException)
            {
                return "qcow";
            }
            catch (UnauthorizedAccessException)
            {
                return "qcow";
            }
        }

        public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
        {
            if (args.Length > 0 && args[0] is "-V" or "--version")
            {
                stdout.WriteLine(VersionText(ProgramName));
                return 0;
            }

            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                stdout.WriteLine(Usage);
                return args.Length == 0 ? 1 : 0;
            }

            var rest = new ArraySegment<string>(args, 1, args.Length - 1);
            if (rest.Any(a => a is "-h" or "--help"))
            {
                // As qemu-img: every verb takes -h and --help, and prints the help, exit status 0.
                stdout.WriteLine(Usage);
                return 0;
            }

            return Guarded(
                () => args[0] switch
                {
                    "create" => CreateCommand.Run(rest, stdout),
                    "info" => InfoCommand.Run(rest, stdout),
                    "check" => CheckCommand.Run(rest, stdout, stderr),
                    "map" => MapCommand.Run(rest, stdout, stderr),
                    "compare" => CompareCommand.Run(rest, stdout, stderr),
                    "dd" => DdCommand.Run(rest, stderr),
                    "amend" => AmendCommand.Run(rest),
                    "snapshot" => SnapshotCommand.Run(rest, stdout),
                    "rebase" => RebaseCommand.Run(rest, stdout),
                    "commit" => CommitCommand.Run(rest, stdout),
                    "bitmap" => BitmapCommand.Run(rest),
                    "resize" => ResizeCommand.Run(rest, stdout, stderr),
                    "bench" => BenchCommand.Run(rest, stdout),
                    "measure" => MeasureCommand.Run(rest, stdout),
                    "explain" => ExplainCommand.Run(rest, stdout),
                    "geometry" => GeometryCommand.Run(rest, stdout),
                    "layout" => LayoutCommand.Run(rest, stdout),
                    "convert" => ConvertCommand.Run(rest, stdout, stderr),
                    "io" => IoCommand.Run(rest, Console.In, stdout, stderr),
                    _ => throw new UsageException($"Command not found: {args[0]}"),
                },
                stderr);
        }

        /// <summary>Runs a verb, turning its failure into one line on stderr, in the program's name, and status 1.</summary>
        private static int Guarded(Func<int> verb, TextWriter stderr)
        {
            try
            {
                return verb();
            }
            catch (HintedException e)
            {
                stderr.Write($"{ProgramName}: {e.Message}\n{e.Hint}");
                return 1;
            }
            catch (UsageException e)
            {
                stderr.WriteLine($"{ProgramName}: {e.Message}");
                stderr.WriteLine($"Try '{ProgramName} --help' for more information");
                return 1;
            }
            catch (Exception e) when (e is QcowFormatException or IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or NotSupportedException or System.Collections.Generic.KeyNotFoundException)
            {
                stderr.WriteLine($"{ProgramName}: {Message(e)}");
                return 1;
            }
        }

        /// <summary>An exception's message as the user should read it.</summary>
        public static string Message(Exception e) => e switch
        {
            // .NET's " (Parameter 'name')" names our code's parameter, nothing the user gave.
            ArgumentException { ParamName: { } name } => e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal),
            IOException => SystemErrors.Text(e.Message),
            _ => e.Message,
        };
    }
}
