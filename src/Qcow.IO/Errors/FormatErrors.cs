// The one place where format errors from the core become QcowFormatException.
using Qcow.Format;

namespace Qcow.IO;

internal static class FormatErrors
{
    public static QcowFormatException ToException(FormatError error, string imagePath)
    {
        QcowFormatErrorKind kind = error.Tag switch
        {
            FormatError.Tags.BadMagic => QcowFormatErrorKind.BadMagic,
            FormatError.Tags.UnsupportedVersion => QcowFormatErrorKind.UnsupportedVersion,
            FormatError.Tags.ForeignFormat => QcowFormatErrorKind.UnsupportedFormat,
            FormatError.Tags.Truncated => QcowFormatErrorKind.Truncated,
            FormatError.Tags.FieldOutOfRange or FormatError.Tags.OutsideQemuLimit => QcowFormatErrorKind.FieldOutOfRange,
            FormatError.Tags.Misaligned => QcowFormatErrorKind.Misaligned,
            FormatError.Tags.ExtensionTooLarge => QcowFormatErrorKind.ExtensionTooLarge,
            FormatError.Tags.UnsupportedFeatures => QcowFormatErrorKind.UnsupportedFeature,
            FormatError.Tags.ReservedBitsSet => QcowFormatErrorKind.ReservedBitsSet,
            FormatError.Tags.EntryOutOfRange => QcowFormatErrorKind.EntryOutOfRange,
            FormatError.Tags.BadCompressedData => QcowFormatErrorKind.BadCompressedData,
            FormatError.Tags.TablePastEnd or FormatError.Tags.Unreadable => QcowFormatErrorKind.EntryOutOfRange,
            FormatError.Tags.WrongFormat => QcowFormatErrorKind.UnsupportedVersion,
            FormatError.Tags.OverlapsMetadata => QcowFormatErrorKind.OverlapsMetadata,
            FormatError.Tags.MarkedCorrupt => ((FormatError.MarkedCorrupt)error).afterOverlap ? QcowFormatErrorKind.OverlapsMetadata : QcowFormatErrorKind.Inconsistent,
            FormatError.Tags.NotSupportedYet => QcowFormatErrorKind.UnsupportedFeature,
            _ => QcowFormatErrorKind.Inconsistent,
        };
        return new QcowFormatException(
            imagePath,
            kind,
            (QcowStructure)FormatErrorModule.structure(error),
            (long)FormatErrorModule.offset(error),
            FormatErrorModule.describe(error),
            marksImageCorrupt: error.Tag is FormatError.Tags.OverlapsMetadata or FormatError.Tags.CorruptionFound);
    }

    /// <summary>Throws for an error result; returns the value otherwise.</summary>
    public static T OrThrow<T>(this Microsoft.FSharp.Core.FSharpResult<T, FormatError> result, string imagePath) =>
        result.IsOk ? result.ResultValue : throw ToException(result.ErrorValue, imagePath);

    public static QcowFormatException Unsupported(string imagePath, string feature) =>
        ToException(FormatError.NewNotSupportedYet(feature), imagePath);
}
