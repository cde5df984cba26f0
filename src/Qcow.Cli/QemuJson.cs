// JSON as qemu-img prints its dictionaries: pretty-printed with four spaces, keys in the order
// QEMU's QDict iterates them (by hash bucket, and newest first within a bucket), so that the
// output is the same text as qemu-img's, not just the same object.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Qcow.Cli;

internal sealed class QemuJson
{
    private const int Buckets = 512;
    private static readonly Regex s_emptyList = new(@"(?m)^( *)(""[^""]*"": )\[\]", RegexOptions.Compiled);
    private readonly List<(string Key, object Value)> _members = new();

    /// <summary>Adds a member; members are added in QEMU's schema order, which decides ties within a bucket.</summary>
    public QemuJson Add(string key, object value)
    {
        _members.Add((key, value));
        return this;
    }

    /// <summary>Adds a member only when the condition holds (QEMU's optional fields).</summary>
    public QemuJson AddIf(bool condition, string key, object value) => condition ? Add(key, value) : this;

    public override string ToString()
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, IndentSize = 4, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            Write(writer);
        }

        // QEMU's printer opens and closes an empty list on lines of their own.
        return s_emptyList.Replace(Encoding.UTF8.GetString(buffer.ToArray()), "$1$2[\n$1]");
    }

    /// <summary>
    /// QEMU's human dump of a dictionary (dump_qdict): "key: value" a line, dashes in keys as
    /// spaces, nested dictionaries and lists indented four spaces a level, list items as [i].
    /// </summary>
    public void DumpHuman(StringBuilder s, int indentation)
    {
        foreach ((string key, object value) in Ordered())
        {
            s.Append(' ', indentation * 4).Append(key.Replace('-', ' ')).Append(':');
            DumpValue(s, indentation, value);
        }
    }

    private static void DumpValue(StringBuilder s, int indentation, object value)
    {
        switch (value)
        {
            case QemuJson nested:
                s.Append('\n');
                nested.DumpHuman(s, indentation + 1);
                break;
            case string text:
                s.Append(' ').Append(text).Append('\n');
                break;
            case IEnumerable<QemuJson> list:
                s.Append('\n');
                int i = 0;
                foreach (QemuJson item in list)
                {
                    s.Append(' ', (indentation + 1) * 4).Append(CultureInfo.InvariantCulture, $"[{i++}]:\n");
                    item.DumpHuman(s, indentation + 2);
                }

                break;
            case IEnumerable<string> strings:
                s.Append('\n');
                int j = 0;
                foreach (string item in strings)
                {
                    s.Append(' ', (indentation + 1) * 4).Append(CultureInfo.InvariantCulture, $"[{j++}]: {item}\n");
                }

                break;
            case bool b:
                s.Append(b ? " true\n" : " false\n");
                break;
            default:
                s.Append(' ').Append(Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture)).Append('\n');
                break;
        }
    }

    private IEnumerable<(string Key, object Value)> Ordered() => _members
        .Select((m, i) => (m, i))
        .OrderBy(x => Bucket(x.m.Key))
        .ThenByDescending(x => x.i)
        .Select(x => x.m);

    private void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        foreach ((string key, object value) in Ordered())
        {
            w.WritePropertyName(key);
            WriteValue(w, value);
        }

        w.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter w, object value)
    {
        switch (value)
        {
            case QemuJson nested:
                nested.Write(w);
                break;
            case IEnumerable<QemuJson> list:
                w.WriteStartArray();
                foreach (QemuJson item in list)
                {
                    item.Write(w);
                }

                w.WriteEndArray();
                break;
            case string s:
                w.WriteStringValue(s);
                break;
            case IEnumerable<string> strings:
                w.WriteStartArray();
                foreach (string item in strings)
                {
                    w.WriteStringValue(item);
                }

                w.WriteEndArray();
                break;
            case bool b:
                w.WriteBooleanValue(b);
                break;
            default:
                w.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    /// <summary>QDict's bucket for a key: the tdb hash of its bytes, modulo 512.</summary>
    private static uint Bucket(string key)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(key);
        uint value = unchecked(0x238F13AFu * (uint)bytes.Length);
        for (int i = 0; i < bytes.Length; i++)
        {
            value = unchecked(value + ((uint)bytes[i] << (i * 5 % 24)));
        }

        return unchecked((1103515243u * value) + 12345u) % Buckets;
    }
}
