// The benchmark's data: every byte non-zero (a fully allocated image), half of it
// incompressible, from a fixed seed so that every run uses the same bytes.
using System;
using System.IO;

namespace Qcow.Bench;

internal static class Data
{
    public static void Write(string path, long size)
    {
        if (File.Exists(path) && new FileInfo(path).Length == size)
        {
            return;
        }

        byte[] chunk = new byte[1 << 20];
        ulong state = 0x9E3779B97F4A7C15;
        using FileStream file = File.Create(path);
        for (long done = 0; done < size; done += chunk.Length)
        {
            Span<ulong> words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(chunk.AsSpan());
            for (int i = 0; i < words.Length; i++)
            {
                // xorshift64*: random words in odd megabytes, a repeating text-like pattern in even ones.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                words[i] = (done >> 20) % 2 == 0 ? (state * 0x2545F4914F6CDD1DUL) | 1 : 0x2020657571636c6cUL + (ulong)i;
            }

            file.Write(chunk, 0, (int)Math.Min(chunk.Length, size - done));
        }
    }
}
