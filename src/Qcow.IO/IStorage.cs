// Positional I/O on the bytes of one file: what the shell reads and writes images through,
// so that tests can put a fault-injecting layer underneath.
using System;

namespace Qcow.IO;

internal interface IStorage : IDisposable
{
    /// <summary>The file's name, for error messages.</summary>
    string Path { get; }

    bool CanWrite { get; }

    long Length { get; }

    /// <summary>Reads at most <c>buffer.Length</c> bytes; fewer only at the end of the file.</summary>
    int Read(long offset, Span<byte> buffer);

    void Write(long offset, ReadOnlySpan<byte> buffer);

    void SetLength(long length);

    /// <summary>Makes every completed write durable (fsync).</summary>
    void Flush();
}
