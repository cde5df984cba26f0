// Zero writes and discards leave the allocation qemu-io leaves (iotests 154, 179, 290): for each
// compat level, with and without a backing file, over unallocated, data, zero and compressed
// clusters, whole and partial clusters, at the end of an image whose last cluster is short, with
// and without -u. qemu-img map (host offsets aside) and the guest bytes must be the same, and
// qemu-img check must find the image clean.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text.RegularExpressions;
using Qcow.Examples.CliTests;
using Xunit;

namespace Qcow.Examples.Oracle;

public sealed partial class ZeroWriteTests
{
    /// <summary>64 KiB clusters; the last of the image's four is 58 KiB long.</summary>
    private const string Size = "250k";

    private static readonly string[] Starts = ["none", "data", "zero", "compressed"];

    private static readonly string[] Requests =
    [
        "write -z 0 64k", "write -z 4k 4k", "write -z 60k 8k", "write -z 32k 96k",
        "write -z 192k 58k", "write -z 200k 50k", "write -z 196k 4k",
        "write -z -u 0 64k", "write -z -u 4k 4k", "write -z -u 32k 96k", "write -z -u 200k 50k",
        "discard 0 128k", "discard 32k 96k",
    ];

    [OracleTheory]
    [InlineData("qcow2", "compat=0.10", false)]
    [InlineData("qcow2", "compat=0.10", true)]
    [InlineData("qcow2", "compat=1.1", false)]
    [InlineData("qcow2", "compat=1.1", true)]
    [InlineData("qcow", "", false)]
    public void ZeroWritesAndDiscards_LeaveWhatQemuIoLeaves(string format, string options, bool backing)
    {
        using var dir = new TempDir();
        string[] o = options == "" ? [] : ["-o", options];
        string[] b = [];
        if (backing)
        {
            Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", "qcow2", .. o, "base.qcow2", Size]);
            Qemu.Io(dir.Path, "base.qcow2", "write -P 9 0 250k");
            b = ["-b", "base.qcow2", "-F", "qcow2"];
        }

        var differences = new List<string>();
        foreach (string start in Starts)
        {
            if ((start == "zero" && options != "compat=1.1") || (start == "compressed" && format == "qcow"))
            {
                continue;
            }

            foreach (string request in Requests)
            {
                if (request.StartsWith("discard", StringComparison.Ordinal) && format == "qcow")
                {
                    continue;
                }

                Qemu.Ok("qemu-img", dir.Path, ["create", "-q", "-f", format, .. o, .. b, "theirs.img", Size]);
                switch (start)
                {
                    case "data":
                        Qemu.Ok("qemu-io", dir.Path, "-f", format, "-c", "write -P 5 0 128k", "-c", "write -P 6 192k 58k", "theirs.img");
                        break;
                    case "zero":
                        Qemu.Io(dir.Path, "theirs.img", "write -z 0 128k", "write -z 192k 58k");
                        break;
                    case "compressed":
                        Qemu.Io(dir.Path, "theirs.img", "write -c -P 5 0 64k", "write -c -P 6 64k 64k");
                        break;
                }

                File.Copy(dir.File("theirs.img"), dir.File("mine.img"), true);
                Qemu.Ok("qemu-io", dir.Path, "-f", format, "-c", request, "theirs.img");
                var mine = QcowTool.Run("io", "-f", format, "-c", request, dir.File("mine.img"));
                Assert.True(mine.Code == 0, $"{start}, {request}: {mine.Stdout}{mine.Stderr}");

                string theirMap = Map(dir, "theirs.img");
                string myMap = Map(dir, "mine.img");
                if (theirMap != myMap)
                {
                    differences.Add($"over {start} clusters, {request}:\nqemu-io leaves {theirMap}\nqcow io leaves {myMap}");
                }

                Assert.Equal(Guest(dir, "theirs.img"), Guest(dir, "mine.img"));
                var (code, stdout, stderr) = Qemu.Run("qemu-img", dir.Path, "check", "mine.img");
                Assert.True(format == "qcow" || code == 0, $"{start}, {request}: qemu-img check exited {code}: {stdout}{stderr}");
            }
        }

        Assert.True(differences.Count == 0, string.Join("\n\n", differences));
    }

    /// <summary>qemu-img map's JSON without host offsets, which differ by allocation order only.</summary>
    private static string Map(TempDir dir, string image) =>
        HostOffset().Replace(Qemu.Ok("qemu-img", dir.Path, "map", "--output=json", image), "");

    private static byte[] Guest(TempDir dir, string image)
    {
        Qemu.Ok("qemu-img", dir.Path, "convert", "-O", "raw", image, image + ".raw");
        return File.ReadAllBytes(dir.File(image + ".raw"));
    }

    [GeneratedRegex(@", ""offset"": \d+")]
    private static partial Regex HostOffset();
}
