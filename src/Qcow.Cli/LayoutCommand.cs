// qcow layout FILE [--svg OUT]: the host file as a map of clusters by role, as text (one
// character a cell) and as an SVG picture with a legend. Large files are drawn with cells of
// several clusters, each showing the role most of its clusters have.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml;

namespace Qcow.Cli;

internal static class LayoutCommand
{
    private const int TextCells = 64 * 64;
    private const int TextColumns = 64;
    private const int SvgCells = 128 * 128;
    private const int SvgColumns = 128;
    private const int CellPixels = 8;

    /// <summary>Each role's character, colour and name, in legend order.</summary>
    private static readonly Dictionary<QcowClusterRole, (char Glyph, string Colour, string Name)> s_roles = new()
    {
        [QcowClusterRole.Header] = ('H', "#1f77b4", "header"),
        [QcowClusterRole.L1Table] = ('1', "#ff7f0e", "L1 table"),
        [QcowClusterRole.L2Table] = ('2', "#ffbb78", "L2 tables"),
        [QcowClusterRole.RefcountTable] = ('T', "#2ca02c", "refcount table"),
        [QcowClusterRole.RefcountBlock] = ('R', "#98df8a", "refcount blocks"),
        [QcowClusterRole.SnapshotTable] = ('S', "#9467bd", "snapshot table"),
        [QcowClusterRole.SnapshotL1Table] = ('s', "#c5b0d5", "snapshot L1 tables"),
        [QcowClusterRole.SnapshotL2Table] = ('i', "#8c564b", "snapshot-only L2 tables"),
        [QcowClusterRole.Data] = ('D', "#7f7f7f", "data"),
        [QcowClusterRole.CompressedData] = ('C', "#17becf", "compressed data"),
        [QcowClusterRole.Bitmap] = ('B', "#bcbd22", "bitmaps"),
        [QcowClusterRole.Leaked] = ('L', "#d62728", "leaked"),
        [QcowClusterRole.Free] = ('.', "#f4f4f4", "free"),
    };

    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        GetOpt opt = GetOpt.Parse(args, "", "U", ["svg"], ["force-share"]);
        if (opt.Positional.Count != 1)
        {
            throw new UsageException("Expecting one image file name");
        }

        string path = opt.Positional[0];
        QcowClusterMap map;
        try
        {
            map = QcowClusterMap.Of(path, forceShare: opt.Has("U") || opt.Has("force-share"));
        }
        catch (NotSupportedException e)
        {
            throw new UsageException(e.Message);
        }

        stdout.Write(Text(path, map));
        if (opt.Value("svg") is { } svg)
        {
            File.WriteAllText(svg, Svg(path, map));
        }

        return 0;
    }

    /// <summary>Clusters per role, in legend order, roles with none left out.</summary>
    public static IEnumerable<(QcowClusterRole Role, long Clusters)> Counts(QcowClusterMap map) =>
        s_roles.Keys.Select(r => (r, map.Roles.LongCount(x => x == r))).Where(x => x.Item2 > 0);

    private static string Text(string path, QcowClusterMap map)
    {
        long perCell = Math.Max(1, (map.Roles.Count + TextCells - 1) / TextCells);
        var s = new StringBuilder();
        s.Append(Inv($"{path}: {map.Roles.Count} clusters of {map.ClusterSize} bytes, {perCell} cluster(s) per character\n"));
        QcowClusterRole[] cells = Cells(map, perCell);
        long bytesPerCell = perCell * map.ClusterSize;
        for (int row = 0; row * TextColumns < cells.Length; row++)
        {
            s.Append(Inv($"0x{row * TextColumns * bytesPerCell:x10} "));
            for (int col = 0; col < TextColumns && (row * TextColumns) + col < cells.Length; col++)
            {
                s.Append(s_roles[cells[(row * TextColumns) + col]].Glyph);
            }

            s.Append('\n');
        }

        s.Append('\n');
        foreach ((QcowClusterRole role, long clusters) in Counts(map))
        {
            s.Append(Inv($"  {s_roles[role].Glyph}  {s_roles[role].Name,-24}{clusters,12} clusters\n"));
        }

        return s.ToString();
    }

    private static string Svg(string path, QcowClusterMap map)
    {
        long perCell = Math.Max(1, (map.Roles.Count + SvgCells - 1) / SvgCells);
        QcowClusterRole[] cells = Cells(map, perCell);
        int rows = (cells.Length + SvgColumns - 1) / SvgColumns;
        var legend = Counts(map).ToList();
        int legendTop = (rows * CellPixels) + 40;
        var text = new StringBuilder();
        using (XmlWriter x = XmlWriter.Create(text, new XmlWriterSettings { Indent = true, OmitXmlDeclaration = true }))
        {
            x.WriteStartElement("svg", "http://www.w3.org/2000/svg");
            x.WriteAttributeString("width", Inv($"{(SvgColumns * CellPixels) + 20}"));
            x.WriteAttributeString("height", Inv($"{legendTop + (legend.Count * 18) + 10}"));
            x.WriteAttributeString("font-family", "monospace");
            x.WriteAttributeString("font-size", "12");
            x.WriteElementString("title", Inv($"{path}: host clusters by role"));
            Text(x, 10, 20, Inv($"{Path.GetFileName(path)}: {map.Roles.Count} clusters of {map.ClusterSize} bytes, {perCell} per cell"));
            for (int i = 0; i < cells.Length; i++)
            {
                Rect(x, 10 + (i % SvgColumns * CellPixels), 30 + (i / SvgColumns * CellPixels), CellPixels, s_roles[cells[i]].Colour, cells[i].ToString());
            }

            for (int i = 0; i < legend.Count; i++)
            {
                (QcowClusterRole role, long clusters) = legend[i];
                int y = legendTop + (i * 18);
                Rect(x, 10, y, 12, s_roles[role].Colour, $"legend {role}");
                Text(x, 28, y + 11, Inv($"{s_roles[role].Name}: {clusters} clusters"));
            }

            x.WriteEndElement();
        }

        return text.ToString();
    }

    /// <summary>The role each cell shows: the most common among its clusters.</summary>
    private static QcowClusterRole[] Cells(QcowClusterMap map, long perCell)
    {
        var cells = new QcowClusterRole[(map.Roles.Count + perCell - 1) / perCell];
        Span<long> tally = stackalloc long[s_roles.Count];
        for (long cell = 0; cell < cells.Length; cell++)
        {
            tally.Clear();
            long end = Math.Min(map.Roles.Count, (cell + 1) * perCell);
            for (long c = cell * perCell; c < end; c++)
            {
                tally[(int)map.Roles[(int)c]]++;
            }

            int best = 0;
            for (int r = 1; r < tally.Length; r++)
            {
                best = tally[r] > tally[best] ? r : best;
            }

            cells[cell] = (QcowClusterRole)best;
        }

        return cells;
    }

    private static void Rect(XmlWriter x, int left, int top, int size, string colour, string @class)
    {
        x.WriteStartElement("rect");
        x.WriteAttributeString("x", Inv($"{left}"));
        x.WriteAttributeString("y", Inv($"{top}"));
        x.WriteAttributeString("width", Inv($"{size}"));
        x.WriteAttributeString("height", Inv($"{size}"));
        x.WriteAttributeString("fill", colour);
        x.WriteAttributeString("class", @class);
        x.WriteEndElement();
    }

    private static void Text(XmlWriter x, int left, int baseline, string content)
    {
        x.WriteStartElement("text");
        x.WriteAttributeString("x", Inv($"{left}"));
        x.WriteAttributeString("y", Inv($"{baseline}"));
        x.WriteString(content);
        x.WriteEndElement();
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
