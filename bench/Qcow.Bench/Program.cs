// The benchmark: on one data set, in one run, Qcow against qemu-img and against a raw file.
//   1. qcow2 → raw and raw → qcow2 of a fully allocated image: `qcow convert` vs `qemu-img
//      convert` (both as processes), with `cp` of the raw file as the floor.
//   2. 4 KiB random reads of a fully cached qcow2 image in process vs pread of the raw file, on
//      one thread and on two (--reads-only runs just these).
// Each timing is the median of --repeat runs, warm page cache, after a sync; both converters use
// their default cache mode for the target ('unsafe': no fsync). Prints a Markdown report.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using Qcow;

string dir = Arg("--dir", Path.Combine(Path.GetTempPath(), "qcow-bench"));
long size = Qcow.Cli.Sizes.Parse(Arg("--size", "1G"));
int repeat = int.Parse(Arg("--repeat", "3"), CultureInfo.InvariantCulture);
int reads = int.Parse(Arg("--reads", "1000000"), CultureInfo.InvariantCulture);
string qcowDll = Path.Combine(AppContext.BaseDirectory, "qcow.dll");
bool readsOnly = Array.IndexOf(args, "--reads-only") >= 0;

Directory.CreateDirectory(dir);
string raw = Path.Combine(dir, "data.raw");
string qcow2 = Path.Combine(dir, "data.qcow2");
Console.Error.WriteLine($"bench: {size} bytes of data in {dir}");
Qcow.Bench.Data.Write(raw, size);
Run("qemu-img", "convert", "-O", "qcow2", raw, qcow2);
if (readsOnly)
{
    Console.WriteLine("| job | Qcow | raw file (pread) |");
    Console.WriteLine("|---|---|---|");
    Console.WriteLine(ReadRows(Qcow.Bench.RandomReads.Measure(qcow2, raw, reads, repeat)));
    return 0;
}

// The jobs take turns, run after run, so that drifts in the machine's state hit them alike.
var jobs = new (string Name, string Target, string Tool, string[] Args)[]
{
    ("qemu qcow2→raw", "q.raw", "qemu-img", ["convert", "-O", "raw", qcow2, Out("q.raw")]),
    ("qcow qcow2→raw", "c.raw", "dotnet", [qcowDll, "convert", "-O", "raw", qcow2, Out("c.raw")]),
    ("qemu raw→qcow2", "q.qcow2", "qemu-img", ["convert", "-O", "qcow2", raw, Out("q.qcow2")]),
    ("qcow raw→qcow2", "c.qcow2", "dotnet", [qcowDll, "convert", "-O", "qcow2", raw, Out("c.qcow2")]),
    ("cp", "cp.raw", "cp", ["--sparse=never", raw, Out("cp.raw")]),
};
// The library in process, as a long-running program uses it: the same convert code without the
// process start and JIT that every `qcow` run pays (warmed up once on a small image).
var inProcess = new (string Name, string Target, string[] Args)[]
{
    ("lib qcow2→raw", "l.raw", ["convert", "-O", "raw", qcow2, Out("l.raw")]),
    ("lib raw→qcow2", "l.qcow2", ["convert", "-O", "qcow2", raw, Out("l.qcow2")]),
};
Qcow.Bench.Data.Write(Out("warm.raw"), 16 << 20);
Qcow.Cli.Cli.Run(["convert", "-O", "qcow2", Out("warm.raw"), Out("warm.qcow2")], TextWriter.Null, Console.Error);
Qcow.Cli.Cli.Run(["convert", "-O", "raw", Out("warm.qcow2"), Out("warm2.raw")], TextWriter.Null, Console.Error);

var times = jobs.Select(j => j.Name).Concat(inProcess.Select(j => j.Name)).ToDictionary(n => n, _ => new List<double>());
for (int r = 0; r < repeat; r++)
{
    foreach (var job in jobs)
    {
        File.Delete(Out(job.Target));
        Run("sync");
        var watch = Stopwatch.StartNew();
        Run(job.Tool, job.Args);
        times[job.Name].Add(watch.Elapsed.TotalSeconds);
    }

    foreach (var job in inProcess)
    {
        File.Delete(Out(job.Target));
        Run("sync");
        var watch = Stopwatch.StartNew();
        if (Qcow.Cli.Cli.Run(job.Args, TextWriter.Null, Console.Error) != 0)
        {
            throw new InvalidOperationException($"{job.Name} failed");
        }

        times[job.Name].Add(watch.Elapsed.TotalSeconds);
    }
}

(double Median, double Min, double Max) Stats(string name)
{
    List<double> t = times[name];
    t.Sort();
    return (t[t.Count / 2], t[0], t[^1]);
}

var qemuToRaw = Stats("qemu qcow2→raw");
var qcowToRaw = Stats("qcow qcow2→raw");
var rawToQemu = Stats("qemu raw→qcow2");
var rawToQcow = Stats("qcow raw→qcow2");
var copy = Stats("cp");
var libToRaw = Stats("lib qcow2→raw");
var rawToLib = Stats("lib raw→qcow2");
Run("qemu-img", "compare", "-q", Out("c.qcow2"), raw);
Run("qemu-img", "compare", "-q", Out("l.qcow2"), raw);
Run("cmp", Out("c.raw"), raw);

Qcow.Bench.ReadRates rates = Qcow.Bench.RandomReads.Measure(qcow2, raw, reads, repeat);
Console.WriteLine($"Median of {repeat} runs (fastest–slowest in brackets); ratio = Qcow median / qemu-img median (fastest / fastest in brackets).");
Console.WriteLine();
Console.WriteLine("| job | Qcow | qemu-img | raw file (cp) | Qcow / qemu-img |");
Console.WriteLine("|---|---|---|---|---|");
Console.WriteLine(Row("qcow2 → raw, `qcow convert` process", qcowToRaw, qemuToRaw, copy));
Console.WriteLine(Row("raw → qcow2, `qcow convert` process", rawToQcow, rawToQemu, copy));
Console.WriteLine(Row("qcow2 → raw, library in process", libToRaw, qemuToRaw, copy));
Console.WriteLine(Row("raw → qcow2, library in process", rawToLib, rawToQemu, copy));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| 4 KiB random reads, one thread, {reads:N0} reads | {rates.Qcow:N0} /s | — | {rates.Raw:N0} /s (pread) | — |"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| 4 KiB random reads, two threads, one image | {rates.QcowTwoThreads:N0} /s ({rates.QcowTwoThreads / rates.Qcow:0.00}×) | — | {rates.RawTwoThreads:N0} /s ({rates.RawTwoThreads / rates.Raw:0.00}×) | — |"));
foreach (string f in Directory.GetFiles(dir, "out-*"))
{
    File.Delete(f);
}

return 0;

string Out(string name) => Path.Combine(dir, "out-" + name);

string ReadRows(Qcow.Bench.ReadRates r) =>
    string.Create(CultureInfo.InvariantCulture, $"| 4 KiB random reads, one thread, {reads:N0} reads | {r.Qcow:N0} /s | {r.Raw:N0} /s |\n")
    + string.Create(CultureInfo.InvariantCulture, $"| 4 KiB random reads, two threads, one image | {r.QcowTwoThreads:N0} /s ({r.QcowTwoThreads / r.Qcow:0.00}× one thread) | {r.RawTwoThreads:N0} /s ({r.RawTwoThreads / r.Raw:0.00}×) |");

string Arg(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

static string Row(string job, (double Median, double Min, double Max) qcow, (double Median, double Min, double Max) qemu, (double Median, double Min, double Max) copy) =>
    string.Create(CultureInfo.InvariantCulture, $"| {job} | {Cell(qcow)} | {Cell(qemu)} | {Cell(copy)} | {qcow.Median / qemu.Median:0.00} ({qcow.Min / qemu.Min:0.00}) |");

static string Cell((double Median, double Min, double Max) t) =>
    string.Create(CultureInfo.InvariantCulture, $"{t.Median:0.00} s ({t.Min:0.00}–{t.Max:0.00})");

static void Run(string tool, params string[] arguments)
{
    var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (string a in arguments)
    {
        start.ArgumentList.Add(a);
    }

    using Process p = Process.Start(start)!;
    string err = p.StandardError.ReadToEnd();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0)
    {
        throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)} exited {p.ExitCode}: {err}");
    }
}
