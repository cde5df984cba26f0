// One QcowImage shared by several threads: writes, zero writes and reads of disjoint ranges, all
// allocating at once, each thread checking its own bytes; the result is clean for qemu-img.
using System;
using System.Threading.Tasks;
using Qcow.Examples.Oracle;
using Xunit;

namespace Qcow.Examples.QcowImageTests;

public sealed class ConcurrencyTests
{
    [Fact]
    public void SharedImage_ServesThreadsWritingAndReadingDisjointRanges()
    {
        using var dir = new TempDir();
        const int Threads = 6;
        const int Span = 4 << 20;
        using (QcowImage image = QcowImage.Create(dir.File("shared.qcow2"), new QcowCreateOptions { Size = Threads * (long)Span, ClusterSize = 4096 }))
        {
            Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
            {
                var random = new Random(t);
                byte[] model = new byte[Span];
                byte[] buffer = new byte[70_000];
                for (int i = 0; i < 300; i++)
                {
                    int offset = random.Next(Span - buffer.Length);
                    int length = random.Next(1, buffer.Length);
                    long at = (long)t * Span + offset;
                    switch (random.Next(3))
                    {
                        case 0:
                            random.NextBytes(buffer.AsSpan(0, length));
                            image.Write(at, buffer.AsSpan(0, length));
                            buffer.AsSpan(0, length).CopyTo(model.AsSpan(offset));
                            break;
                        case 1:
                            image.WriteZeroes(at, length);
                            model.AsSpan(offset, length).Clear();
                            break;
                        default:
                            image.Read(at, buffer.AsSpan(0, length));
                            Assert.True(buffer.AsSpan(0, length).SequenceEqual(model.AsSpan(offset, length)), $"thread {t} read {i} differs");
                            break;
                    }
                }
            });
        }

        if (Qemu.ImgPath != null)
        {
            Qemu.AssertClean(dir.Path, "shared.qcow2");
        }
    }
}
