// Sizes as qemu-img and qemu-io write them: a number with an optional suffix, powers of 1024.
using System;
using System.Globalization;

namespace Qcow.Cli;

internal static class Sizes
{
    private const string Suffixes = "BKMGTPE";

    /// <summary>Parses "64k", "1G", "512", "1.5M" (qemu_strtosz); throws a usage error otherwise.</summary>
    public static long Parse(string text)
    {
        string t = text.Trim();
        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return long.TryParse(t[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long hex) && hex >= 0
                ? hex
                : throw new UsageException($"Invalid size '{text}'");
        }

        int shift = 0;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            int index = Suffixes.IndexOf(char.ToUpperInvariant(t[^1]));
            if (index < 0)
            {
                throw new UsageException($"Invalid size '{text}': unknown suffix");
            }

            shift = index * 10;
            t = t[..^1];
        }

        if (!decimal.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal value) || value < 0)
        {
            throw new UsageException($"Invalid size '{text}'");
        }

        decimal bytes = value * (1L << shift);
        if (bytes > long.MaxValue)
        {
            throw new UsageException($"Invalid size '{text}': too large");
        }

        return (long)bytes;
    }

    private static readonly string[] s_units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

    /// <summary>qemu-img's human size: "1 GiB", "196 KiB", "1.5 MiB", "512 B".</summary>
    public static string Human(long bytes)
    {
        (decimal value, string? unit) = Scaled(bytes);

        // QEMU prints three significant digits and drops trailing zeros.
        string number = ((double)value).ToString(value >= 100 ? "0" : value >= 10 ? "0.#" : "0.##", CultureInfo.InvariantCulture);
        return $"{number} {unit ?? "B"}";
    }

    /// <summary>
    /// qemu-io's cvtstr: three decimals, rounded as printf rounds (half to even on the exact
    /// value), with ".000" dropped: "1.062 MiB", "896 KiB", "0 bytes".
    /// </summary>
    public static string Io(long bytes)
    {
        (decimal value, string? unit) = Scaled(bytes);
        string number = Math.Round(value, 3, MidpointRounding.ToEven).ToString("0.000", CultureInfo.InvariantCulture);
        return $"{(number.EndsWith(".000", StringComparison.Ordinal) ? number[..^4] : number)} {unit ?? "bytes"}";
    }

    /// <summary>The size in the largest binary unit it reaches; no unit below 1 KiB.</summary>
    private static (decimal Value, string? Unit) Scaled(long bytes)
    {
        decimal value = bytes;
        string? unit = null;
        for (int i = 0; value >= 1024 && i < s_units.Length; i++)
        {
            value /= 1024;
            unit = s_units[i];
        }

        return (value, unit);
    }
}
