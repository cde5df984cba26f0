// The qcow tool's entry point: picks the verb and turns every failure into one line on stderr.
using System;
using System.IO;
using Qcow.Cli;

return Cli.Run(args, Console.Out, Console.Error);

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
              resize [-f fmt] [--preallocation=off|metadata|falloc|full] [-q] [--shrink] FILE [+|-]SIZE
              map [-f fmt] [--output=human|json] [--start-offset=N] [--max-length=N] [-U] FILE
              convert [-f fmt] [-O fmt] [-o options] [-t cache] [-p] [-c] [-n] [--target-is-zero] [-S size] [-m N] [-W] [-B backing [-F fmt]] [-U] SRC... DST
            teaching verbs:
              explain [-f fmt] [--output=human|json] FILE OFFSET
              layout [--svg OUT] [-U] FILE
              geometry [-o cluster_size=..,refcount_bits=..,extended_l2=..] [--output=human|json] SIZE
            qemu-io's commands:
              io [-f fmt] [-r] [-U] [-c CMD]... FILE   (read, write [-P] [-z] [-c], discard, flush, map, alloc, info, length)
            """;

        public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                stdout.WriteLine(Usage);
                return args.Length == 0 ? 1 : 0;
            }

            var rest = new ArraySegment<string>(args, 1, args.Length - 1);
            try
            {
                return args[0] switch
                {
                    "create" => CreateCommand.Run(rest, stdout),
                    "info" => InfoCommand.Run(rest, stdout),
                    "check" => CheckCommand.Run(rest, stdout, stderr),
                    "map" => MapCommand.Run(rest, stdout, stderr),
                    "compare" => CompareCommand.Run(rest, stdout, stderr),
                    "dd" => DdCommand.Run(rest, stderr),
                    "amend" => AmendCommand.Run(rest),
                    "resize" => ResizeCommand.Run(rest, stdout, stderr),
                    "bench" => BenchCommand.Run(rest, stdout),
                    "measure" => MeasureCommand.Run(rest, stdout),
                    "explain" => ExplainCommand.Run(rest, stdout),
                    "geometry" => GeometryCommand.Run(rest, stdout),
                    "layout" => LayoutCommand.Run(rest, stdout),
                    "convert" => ConvertCommand.Run(rest, stderr),
                    "io" => IoCommand.Run(rest, stdout, stderr),
                    _ => throw new UsageException($"Command not found: {args[0]}"),
                };
            }
            catch (UsageException e)
            {
                stderr.WriteLine($"qcow: {e.Message}");
                stderr.WriteLine("Try 'qcow --help' for more information");
                return 1;
            }
            catch (Exception e) when (e is QcowFormatException or IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or NotSupportedException)
            {
                stderr.WriteLine($"qcow: {Message(e)}");
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
