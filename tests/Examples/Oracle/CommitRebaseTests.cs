// commit and rebase on backing chains up to three deep, each done by Qcow on one copy of the chain
// and by qemu-img on another: every layer reads the same afterwards, qemu-img check finds
// Qcow's images clean, and the backing files recorded are the same.
using System;
using System.IO;
using System.Linq;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed class CommitRebaseTests
{
    private const string Size = "4M";

    /// <summary>base ← mid ← top, each with data of its own, some over the layer below, some zeroed.</summary>
    private static void MakeChain(string dir, string prefix, int clusterSize)
    {
        string o = $"cluster_size={clusterSize}";
        Qemu.Ok("qemu-img", dir, "create", "-q", "-f", "qcow2", "-o", o, $"{prefix}base", Size);
        Qemu.Io(dir, $"{prefix}base", "write -P 0x11 0 2M", "write -P 0x12 3M 512k");
        Qemu.Ok("qemu-img", dir, "create", "-q", "-f", "qcow2", "-o", o, "-b", $"{prefix}base", "-F", "qcow2", $"{prefix}mid", Size);
        Qemu.Io(dir, $"{prefix}mid", "write -P 0x21 1M 1M", "write -z 3M 64k", "write -P 0x22 100k 3000");
        Qemu.Ok("qemu-img", dir, "create", "-q", "-f", "qcow2", "-o", o, "-b", $"{prefix}mid", "-F", "qcow2", $"{prefix}top", Size);
        Qemu.Io(dir, $"{prefix}top", "write -P 0x31 1536k 1M", "write -z 10k 20k", "write -P 0x32 3300k 700k");
    }

    public static TheoryData<string[], int> Commits => new()
    {
        { ["commit", "top"], 65536 },
        { ["commit", "-d", "top"], 4096 },
        { ["commit", "-b", "mid", "top"], 65536 },
        { ["commit", "-b", "base", "top"], 4096 },
        { ["commit", "mid"], 512 },
    };

    [OracleTheory]
    [MemberData(nameof(Commits))]
    public void Commit_LeavesEveryLayerAsQemuImgLeavesIt(string[] call, int clusterSize)
    {
        using var dir = new TempDir();
        MakeChain(dir.Path, "q", clusterSize);
        MakeChain(dir.Path, "", clusterSize);
        string[] qemuCall = [.. call.Select(a => a is "top" or "mid" or "base" ? "q" + a : a)];

        var (code, stdout, stderr) = QcowTool.RunIn(dir.Path, call);
        Assert.True(code == 0, stderr);
        Assert.Equal(Qemu.Ok("qemu-img", dir.Path, qemuCall), stdout);
        AssertSameLayers(dir.Path);
    }

    public static TheoryData<string[], int> Rebases => new()
    {
        { ["rebase", "-b", "base", "-F", "qcow2", "top"], 65536 },
        { ["rebase", "-b", "", "top"], 4096 },
        { ["rebase", "-b", "", "mid"], 512 },
        { ["rebase", "-u", "-b", "base", "-F", "qcow2", "top"], 65536 },
        { ["rebase", "-b", "other", "-F", "qcow2", "top"], 4096 },
    };

    [OracleTheory]
    [MemberData(nameof(Rebases))]
    public void Rebase_LeavesEveryLayerAsQemuImgLeavesIt(string[] call, int clusterSize)
    {
        using var dir = new TempDir();
        MakeChain(dir.Path, "q", clusterSize);
        MakeChain(dir.Path, "", clusterSize);
        foreach (string other in new[] { "other", "qother" })
        {
            Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", other, Size);
            Qemu.Io(dir.Path, other, "write -P 0x41 512k 2M");
        }

        byte[] before = Qemu.RawBytes(dir.Path, "top");
        string[] qemuCall = [.. call.Select(a => a is "top" or "mid" or "base" or "other" ? "q" + a : a)];
        var (code, stdout, stderr) = QcowTool.RunIn(dir.Path, call);
        Assert.True(code == 0, stderr);
        Assert.Equal(Qemu.Ok("qemu-img", dir.Path, qemuCall), stdout);
        AssertSameLayers(dir.Path);
        if (!call.Contains("-u"))
        {
            // Safe mode keeps the guest's disk.
            Assert.Equal(before, Qemu.RawBytes(dir.Path, "top"));
        }

        Assert.Equal(Backing(dir.Path, "qtop").Replace("qother", "other").Replace("qbase", "base").Replace("qmid", "mid"), Backing(dir.Path, "top"));
    }

    [OracleFact]
    public void CommitAndRebaseErrors_AreQemuImgs()
    {
        using var dir = new TempDir();
        MakeChain(dir.Path, "", 65536);
        string[][] calls =
        [
            ["commit", "base"],
            ["commit", "-b", "nope", "top"],
            ["rebase", "top"],
            ["rebase", "-b", "base", "top"],
            ["rebase", "-u", "-b", "base", "top"],
            ["rebase", "-b", "nope", "-F", "qcow2", "top"],
        ];
        foreach (string[] call in calls)
        {
            var (qemuCode, qemuOut, qemuErr) = Qemu.Run("qemu-img", dir.Path, call);
            var (code, stdout, stderr) = QcowTool.RunIn(dir.Path, call);
            Assert.Equal((qemuCode, qemuOut, qemuErr.Replace("qemu-img", "qcow", StringComparison.Ordinal)), (code, stdout, stderr));
        }
    }

    /// <summary>Each of Qcow's layers reads as qemu-img's twin and is clean.</summary>
    private static void AssertSameLayers(string dir)
    {
        foreach (string layer in new[] { "base", "mid", "top" })
        {
            Qemu.AssertClean(dir, layer);
            Assert.True(Qemu.RawBytes(dir, "q" + layer).AsSpan().SequenceEqual(Qemu.RawBytes(dir, layer)), $"{layer} reads differently from qemu-img's");
        }
    }

    private static string Backing(string dir, string image) =>
        string.Join("\n", Qemu.Ok("qemu-img", dir, "info", image).Split('\n').Where(l => l.StartsWith("backing file", StringComparison.Ordinal)));
}
