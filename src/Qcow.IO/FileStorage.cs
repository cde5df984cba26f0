// IStorage on a real file: RandomAccess on a SafeFileHandle, fsync for Flush.
using System;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace Qcow.IO;

internal sealed class FileStorage : IStorage
{
    private readonly SafeFileHandle _handle;

    private FileStorage(string path, SafeFileHandle handle, bool canWrite)
    {
        Path = path;
        _handle = handle;
        CanWrite = canWrite;
    }

    public string Path { get; }

    public bool CanWrite { get; }

    public long Length => RandomAccess.GetLength(_handle);

    public static FileStorage Open(string path, bool writable)
    {
        SafeFileHandle handle = File.OpenHandle(
            path,
            FileMode.Open,
            writable ? FileAccess.ReadWrite : FileAccess.Read,
            writable ? FileShare.Read : FileShare.ReadWrite);
        return new FileStorage(path, handle, writable);
    }

    public static FileStorage Create(string path)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read);
        return new FileStorage(path, handle, canWrite: true);
    }

    public int Read(long offset, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(_handle, buffer[total..], offset + total);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    public void Write(long offset, ReadOnlySpan<byte> buffer) => RandomAccess.Write(_handle, buffer, offset);

    public void SetLength(long length) => RandomAccess.SetLength(_handle, length);

    public void Flush() => RandomAccess.FlushToDisk(_handle);

    public void Dispose() => _handle.Dispose();
}
