/// Where each field of a qcow2 header lies, derived from the fields' widths in order (as
/// System.Formats.Tar's FieldLocations does for tar headers): a field's offset is the previous
/// field's offset plus that field's width. Decode, encode, the shell's in-place header writes and
/// the errors that name a field's offset all take the offsets from here.
module internal Qcow.Format.HeaderFields

[<Literal>]
let Magic = 0

[<Literal>]
let Version = Magic + 4

[<Literal>]
let BackingFileOffset = Version + 4

[<Literal>]
let BackingFileSize = BackingFileOffset + 8

[<Literal>]
let ClusterBits = BackingFileSize + 4

[<Literal>]
let Size = ClusterBits + 4

[<Literal>]
let CryptMethod = Size + 8

[<Literal>]
let L1Size = CryptMethod + 4

[<Literal>]
let L1TableOffset = L1Size + 4

[<Literal>]
let RefcountTableOffset = L1TableOffset + 8

[<Literal>]
let RefcountTableClusters = RefcountTableOffset + 8

[<Literal>]
let SnapshotCount = RefcountTableClusters + 4

[<Literal>]
let SnapshotsOffset = SnapshotCount + 4

/// Where a version 2 header ends, and version 3's fields begin.
[<Literal>]
let Version2End = SnapshotsOffset + 8

[<Literal>]
let IncompatibleFeatures = Version2End

[<Literal>]
let CompatibleFeatures = IncompatibleFeatures + 8

[<Literal>]
let AutoclearFeatures = CompatibleFeatures + 8

[<Literal>]
let RefcountOrder = AutoclearFeatures + 8

[<Literal>]
let HeaderLength = RefcountOrder + 4

/// Where the fields every version 3 header has end (header_length's least value).
[<Literal>]
let Version3MandatoryEnd = HeaderLength + 4

/// The first optional field: present when header_length reaches past it.
[<Literal>]
let CompressionType = Version3MandatoryEnd
