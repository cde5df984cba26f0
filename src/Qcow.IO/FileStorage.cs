// IStorage on a real file: RandomAccess on a SafeFileHandle, fsync for Flush (unless flushes
// are to be ignored, as QEMU's cache=unsafe ignores them).
using System;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace Qcow.IO;

internal sealed class FileStorage : IStorage
{
    private readonly SafeFileHandle _handle;
    private readonly bool _ignoreFlushes;

    private FileStorage(string path, SafeFileHandle handle, bool canWrite, bool ignoreFlushes)
    {
        Path = path;
        _handle = handle;
        CanWrite = canWrite;
        _ignoreFlushes = ignoreFlushes;
    }

    public string Path { get; }

    public bool CanWrite { get; }

    public long Length => RandomAccess.GetLength(_handle);

    /// <summary>
    /// Opens an existing file and takes QEMU's image locks on it (<paramref name="shareAll"/> is
    /// qemu-img's -U); with <paramref name="ignoreFlushes"/> it never fsyncs (QEMU's cache=unsafe,
    /// qemu-img convert's default).
    /// </summary>
    /// <exception cref="QcowLockedException">Another process holds the image in a conflicting way.</exception>
    public static FileStorage Open(string path, bool writable, bool ignoreFlushes = false, bool shareAll = false)
    {
        SafeFileHandle handle = File.OpenHandle(
            path,
            FileMode.Open,
            writable ? FileAccess.ReadWrite : FileAccess.Read,
            FileShare.ReadWrite);
        try
        {
            ImageLock.Acquire(handle, path, writable, shareAll);
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        return new FileStorage(path, handle, writable, ignoreFlushes);
    }

    public static FileStorage Create(string path)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read);
        return new FileStorage(path, handle, canWrite: true, ignoreFlushes: false);
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

    public void Flush()
    {
        if (!_ignoreFlushes)
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    public void Dispose() => _handle.Dispose();
}
