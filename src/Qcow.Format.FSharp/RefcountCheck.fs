/// How qemu-img check judges a host cluster's stored refcount against the references the tables
/// hold to it, and what each repair mode may change (QEMU's compare_refcounts).
module internal Qcow.Format.RefcountCheck

/// What a check may repair: nothing, leaks (-r leaks), or leaks and errors (-r all).
[<RequireQualifiedAccess>]
type Repair =
    | Nothing
    | Leaks
    | All

[<RequireQualifiedAccess>]
type Verdict =
    | Agrees
    /// More stored than referenced: wasted space, repaired by lowering the refcount.
    | Leaked
    /// Fewer stored than referenced, but some: a write could free a cluster in use; repaired by
    /// raising the refcount in place.
    | Corrupt
    /// Referenced, yet stored as free: the refcount structures miss the cluster, so only new
    /// ones repair it.
    | Unrecorded

let verdict (stored: uint64) (references: uint64) =
    if stored = references then Verdict.Agrees
    elif stored = 0UL then Verdict.Unrecorded
    elif stored > references then Verdict.Leaked
    else Verdict.Corrupt

/// Whether a repair mode sets the cluster's refcount to its references where it is.
let repairsInPlace (repair: Repair) (verdict: Verdict) =
    match repair, verdict with
    | (Repair.Leaks | Repair.All), Verdict.Leaked -> true
    | Repair.All, Verdict.Corrupt -> true
    | _ -> false

/// qemu-img check's line for a cluster whose refcount and references differ.
let mismatchMessage (repairing: bool) (cluster: uint64) (stored: uint64) (references: uint64) =
    let what = if repairing then "Repairing" elif stored < references then "ERROR" else "Leaked"
    sprintf "%s cluster %d refcount=%d reference=%d" what cluster stored references
