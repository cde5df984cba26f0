// qemu-img's progress display: "    (45.00/100%)" redrawn in place on stdout, and a newline at the end.
using System;
using System.Globalization;
using System.IO;

namespace Qcow.Cli;

internal sealed class ProgressBar : IProgress<double>
{
    /// <summary>qemu-img redraws when the figure has moved by more than a step: 1% by default, 2% for compare.</summary>
    public const float DefaultStep = 1;

    public const float CompareStep = 2;

    private readonly TextWriter _writer;
    private readonly float _step;
    private float _shown;

    public ProgressBar(TextWriter writer, float step = DefaultStep)
    {
        _writer = writer;
        _step = step;
    }

    public void Report(double value)
    {
        // qemu-img keeps the figure as a float and always draws 0 and 100, even twice.
        float current = (float)value;
        if (!(current > _shown + _step || current < _shown - _step || current == 0 || current == 100))
        {
            return;
        }

        _shown = current;
        _writer.Write(string.Create(CultureInfo.InvariantCulture, $"    ({AsPrintf(current)}/100%)\r"));
        _writer.Flush();
    }

    /// <summary>Ends the display as qemu-img does, with a newline after the last figure.</summary>
    public void End()
    {
        _writer.WriteLine();
        _writer.Flush();
    }

    /// <summary>
    /// Two decimals as C's printf gives them: from the float's exact value, a tie to the even digit
    /// (15.625 shows as 15.62, where .NET's formatting would round it up).
    /// </summary>
    private static string AsPrintf(float value) =>
        Math.Round((decimal)(double)value, 2, MidpointRounding.ToEven).ToString("0.00", CultureInfo.InvariantCulture);
}
