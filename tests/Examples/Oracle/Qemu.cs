// qemu-img and qemu-io as the test oracle: finding them, running them, and the rule for when an
// oracle test may skip (qemu-img absent and not under CI; under CI it must run).
using System;
using System.Diagnostics;
using System.IO;
using System.Text.Json;
using Xunit;

namespace Qcow.Examples.Oracle;

internal static class Qemu
{
    public static readonly string? ImgPath = Find("qemu-img");
    public static readonly string? IoPath = Find("qemu-io");
    public static readonly string? NbdPath = Find("qemu-nbd");

    public static bool UnderCi => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    /// <summary>Why oracle tests skip, or null when they run.</summary>
    public static string? SkipReason => ImgPath is null && !UnderCi ? "qemu-img is not installed (apt-get install qemu-utils); under CI these tests run" : null;

    public static (int ExitCode, string Stdout, string Stderr) Run(string tool, string workingDirectory, params string[] args) =>
        Run(tool, workingDirectory, TimeSpan.FromMinutes(10), args);

    /// <summary>Runs a tool; one that has not exited within <paramref name="limit"/> is killed and a TimeoutException thrown.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string tool, string workingDirectory, TimeSpan limit, params string[] args)
    {
        string path = tool switch { "qemu-img" => ImgPath, "qemu-nbd" => NbdPath, _ => IoPath } ?? throw new InvalidOperationException($"{tool} is not installed (apt-get install qemu-utils)");
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within {limit.TotalSeconds} s");
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs a tool and fails the test if it does not exit 0.</summary>
    public static string Ok(string tool, string workingDirectory, params string[] args)
    {
        var (code, stdout, stderr) = Run(tool, workingDirectory, args);
        Assert.True(code == 0, $"{tool} {string.Join(' ', args)} exited {code}: {stderr}{stdout}");
        return stdout;
    }

    /// <summary>qemu-img io commands, one -c each.</summary>
    public static void Io(string directory, string image, params string[] commands)
    {
        var args = new System.Collections.Generic.List<string>();
        foreach (string c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }

        args.Add(image);
        string output = Ok("qemu-io", directory, args.ToArray());
        Assert.DoesNotContain("failed", output, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The guest bytes of an image as qemu-img convert -O raw reads them (with <paramref name="options"/>, such as -l SNAPSHOT).</summary>
    public static byte[] RawBytes(string directory, string image, params string[] options)
    {
        string raw = Path.Combine(directory, Path.GetFileName(image) + ".oracle.raw");
        Ok("qemu-img", directory, ["convert", "-O", "raw", .. options, image, raw]);
        byte[] bytes = File.ReadAllBytes(raw);
        File.Delete(raw);
        return bytes;
    }

    /// <summary>qemu-img check --output=json, asserting no check errors, corruptions or leaks.</summary>
    public static void AssertClean(string directory, string image)
    {
        var (code, stdout, stderr) = Run("qemu-img", directory, "check", "--output=json", image);
        Assert.True(code == 0, $"qemu-img check {image} exited {code}: {stderr}{stdout}");
        using JsonDocument json = JsonDocument.Parse(stdout);
        Assert.Equal(0, json.RootElement.GetProperty("check-errors").GetInt32());
        Assert.False(json.RootElement.TryGetProperty("corruptions", out _), stdout);
        Assert.False(json.RootElement.TryGetProperty("leaks", out _), stdout);
    }

    private static string? Find(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>A fact that needs qemu-img: skipped only when it is absent and CI is not set.</summary>
public sealed class OracleFactAttribute : FactAttribute
{
    public OracleFactAttribute()
    {
        Skip = Qemu.SkipReason!;
    }
}

/// <summary>A theory that needs qemu-img: skipped only when it is absent and CI is not set.</summary>
public sealed class OracleTheoryAttribute : TheoryAttribute
{
    public OracleTheoryAttribute()
    {
        Skip = Qemu.SkipReason!;
    }
}

/// <summary>A temporary directory, deleted with everything in it.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("qcow-test-").FullName;
    }

    /// <summary>A temporary directory under <paramref name="root"/> (tmpfs, for tests that write much).</summary>
    public TempDir(string root)
    {
        Path = Directory.CreateDirectory(System.IO.Path.Combine(root, "qcow-test-" + System.IO.Path.GetRandomFileName())).FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
