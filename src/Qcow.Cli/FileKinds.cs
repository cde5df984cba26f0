// What kind of file a path names, as QEMU's protocol drivers ask stat(2): .NET tells a directory
// from a file but not a device from a regular file, so Linux's statx answers (its layout is the
// same on every architecture, unlike struct stat's).
using System;
using System.IO;
using System.Runtime.InteropServices;

namespace Qcow.Cli;

internal enum FileKind
{
    Missing,
    Regular,
    Directory,
    Device,
    Other,
}

internal static class FileKinds
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int ModeOffset = 28;
    private const int FileTypeMask = 0xF000;

    public static FileKind Of(string path)
    {
        if (Directory.Exists(path))
        {
            return FileKind.Directory;
        }

        if (!File.Exists(path))
        {
            return FileKind.Missing;
        }

        byte[] buffer = new byte[256];
        if (!OperatingSystem.IsLinux() || Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
        {
            return FileKind.Regular;
        }

        return (BitConverter.ToUInt16(buffer, ModeOffset) & FileTypeMask) switch
        {
            0x8000 => FileKind.Regular,
            0x2000 or 0x6000 => FileKind.Device,
            _ => FileKind.Other,
        };
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int directory, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
}
