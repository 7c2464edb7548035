//! Shared by the loom tests (`RUSTFLAGS="--cfg loom"`).

/// `loom::model` with a preemption bound of 3 unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise (an unbounded search of these models takes far too long).
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.max_branches = 100_000;
    b.check(f);
}
