// qcow layout: every host cluster gets its role; the counts agree with qemu-img check (leaks) and
// with the header (one header, the refcount table's clusters); the SVG is well-formed XML with a
// cell per cluster (or per group of clusters in a large file) and the same counts in its legend.
using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.CliTests;

public sealed class LayoutCommandTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [OracleFact]
    public void Layout_GivesEveryClusterItsRole_AndCountsAgreeWithQemuImgCheck()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "l.qcow2", "64M");
        Qemu.Io(dir.Path, "l.qcow2", "write -P 1 0 256k", "write -c -P 2 1M 64k", "write -c -P 3 2M 64k");
        Qemu.Ok("qemu-img", dir.Path, "snapshot", "-c", "s", "l.qcow2");
        Qemu.Io(dir.Path, "l.qcow2", "write -P 4 0 64k");
        MakeLeaks(dir.File("l.qcow2"), 3);

        var (text, svg) = Layout(dir, "l.qcow2");

        JsonNode check = JsonNode.Parse(Qemu.Run("qemu-img", dir.Path, "check", "--output=json", "l.qcow2").Stdout)!;
        Assert.Equal((long)check["leaks"]!, Count(text, "leaked"));
        Assert.Equal(1, Count(text, "header"));
        Assert.Equal(1, Count(text, "refcount table"));
        Assert.Equal(1, Count(text, "snapshot table"));
        Assert.Equal(1, Count(text, "snapshot L1 tables"));
        Assert.Equal(1, Count(text, "compressed data"));
        Assert.Equal(5, Count(text, "data"));
        long cells = svg.Descendants(Svg + "rect").Count(r => !((string)r.Attribute("class")!).StartsWith("legend", StringComparison.Ordinal));
        Assert.Equal(new FileInfo(dir.File("l.qcow2")).Length / 65536, cells);
        foreach (XElement legend in svg.Descendants(Svg + "text").Skip(1))
        {
            Match m = Regex.Match(legend.Value, "^(.+): ([0-9]+) clusters$");
            Assert.Equal(Count(text, m.Groups[1].Value), long.Parse(m.Groups[2].Value));
        }
    }

    [OracleFact]
    public void Layout_OfAFileWithManyClusters_DrawsGroupsOfClusters()
    {
        using var dir = new TempDir();
        Qemu.Ok("qemu-img", dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "big.qcow2", "64M");
        Qemu.Io(dir.Path, "big.qcow2", "write -P 1 0 20M");

        var (text, svg) = Layout(dir, "big.qcow2");

        string[] rows = text.Split('\n').Where(l => l.StartsWith("0x", StringComparison.Ordinal)).ToArray();
        Assert.InRange(rows.Length, 1, 64);
        Assert.All(rows, r => Assert.InRange(r.Length, 1, 13 + 64));
        Assert.InRange(svg.Descendants(Svg + "rect").Count(), 1, (128 * 128) + 12);
        Assert.True(Count(text, "data") >= 20 << 11);
    }

    private static (string Text, XDocument Svg) Layout(TempDir dir, string image)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(Cli.Cli.Run(["layout", "--svg", dir.File("map.svg"), dir.File(image)], stdout, stderr) == 0, stderr.ToString());
        return (stdout.ToString(), XDocument.Load(dir.File("map.svg")));
    }

    /// <summary>The count the text legend gives for a role, 0 when it lists none.</summary>
    private static long Count(string text, string role)
    {
        Match m = Regex.Match(text, $@"^  .  {Regex.Escape(role)} +([0-9]+) clusters$", RegexOptions.Multiline);
        return m.Success ? long.Parse(m.Groups[1].Value) : 0;
    }

    /// <summary>Appends clusters and gives them refcount 1 (16-bit refcounts, one block at 0x20000): leaks.</summary>
    private static void MakeLeaks(string path, int clusters)
    {
        byte[] image = File.ReadAllBytes(path);
        long first = image.Length / 65536;
        Array.Resize(ref image, (int)((first + clusters) * 65536));
        for (long c = first; c < first + clusters; c++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan((int)(0x20000 + (c * 2))), 1);
        }

        File.WriteAllBytes(path, image);
    }
}
