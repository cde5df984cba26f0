// qemu-img's progress display: "    (45.00/100%)" redrawn in place, on stderr.
using System;
using System.Globalization;
using System.IO;

namespace Qcow.Cli;

internal sealed class ProgressBar : IProgress<double>
{
    private readonly TextWriter _writer;
    private double _shown = -1;

    public ProgressBar(TextWriter writer)
    {
        _writer = writer;
    }

    public void Report(double value)
    {
        // Like qemu-img, redraw only when the figure moves by at least 1% (and at the end).
        if (value < 100 ? value - _shown < 1 : _shown >= 100)
        {
            return;
        }

        _shown = value;
        _writer.Write(string.Create(CultureInfo.InvariantCulture, $"    ({value:0.00}/100%)\r"));
        if (value >= 100)
        {
            _writer.WriteLine();
        }

        _writer.Flush();
    }
}
