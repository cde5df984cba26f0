// Copying a range of one image's guest bytes into another, block by block, as qemu-img dd does.
using System;
using System.Threading;

namespace Qcow;

public sealed partial class QcowImage
{
    /// <summary>
    /// Copies <paramref name="length"/> guest bytes from <paramref name="sourceOffset"/> of this
    /// image to <paramref name="targetOffset"/> of <paramref name="target"/>, in blocks of
    /// <paramref name="blockSize"/> bytes (qemu-img dd's bs), every byte read and written; then
    /// flushes the target.
    /// </summary>
    /// <param name="target">The image written; open read-write.</param>
    /// <param name="sourceOffset">The first byte read.</param>
    /// <param name="targetOffset">Where it is written.</param>
    /// <param name="length">Bytes to copy; both ranges must lie inside their disks.</param>
    /// <param name="blockSize">Bytes per read and write.</param>
    /// <param name="progress">Receives the percentage done, from 0 to 100.</param>
    /// <param name="cancellationToken">Stops the copy between blocks.</param>
    /// <exception cref="ArgumentOutOfRangeException">A range is outside its disk, or the block size is not positive.</exception>
    /// <exception cref="InvalidOperationException">The target is open read-only.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public void CopyTo(QcowImage target, long sourceOffset, long targetOffset, long length, int blockSize = 512, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        CheckRange(sourceOffset, length);
        target.CheckRange(targetOffset, length);
        byte[] block = new byte[Math.Min(blockSize, Math.Max(length, 1))];
        for (long done = 0; done < length;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = (int)Math.Min(block.Length, length - done);
            _device.Read(sourceOffset + done, block.AsSpan(0, n));
            target.Write(targetOffset + done, block.AsSpan(0, n));
            done += n;
            progress?.Report(100.0 * done / length);
        }

        target.Flush();
        progress?.Report(100);
    }
}
