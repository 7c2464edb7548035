//! Event counters (the kernel's `vm_event_item.h` and `vmstat_text[]` in one):
//! every counter is declared once below, and its name comes from there.

/// Declares `Counters` and its name table from one list. `name,` is a counter
/// field; `name = a + b,` is a row of `as_pairs()` summing two counters.
macro_rules! vm_events {
    (@acc [$($field:tt)*] [$($row:tt)*]) => {
        /// Event counters, named as the kernel's vmstat where there is one.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Counters {
            $($field)*
        }

        impl Counters {
            /// Every row of [`Counters::as_pairs`]: its name and how to read it
            /// (the kernel's `vmstat_text[]`).
            pub const ROWS: &'static [(&'static str, fn(&Counters) -> u64)] = &[$($row)*];

            /// Every counter as (name, value), in declaration order.
            pub fn as_pairs(&self) -> Vec<(&'static str, u64)> {
                Self::ROWS.iter().map(|&(name, get)| (name, get(self))).collect()
            }

            /// How much every counter grew since `before`, as (name, increment).
            pub fn delta(&self, before: &Counters) -> Vec<(&'static str, u64)> {
                Self::ROWS
                    .iter()
                    .map(|&(name, get)| (name, get(self) - get(before)))
                    .collect()
            }
        }
    };
    (@acc [$($field:tt)*] [$($row:tt)*] $name:ident = $a:ident + $b:ident, $($rest:tt)*) => {
        vm_events!(@acc [$($field)*] [$($row)* (stringify!($name), |c: &Counters| c.$a + c.$b),] $($rest)*);
    };
    (@acc [$($field:tt)*] [$($row:tt)*] $(#[$doc:meta])* $name:ident, $($rest:tt)*) => {
        vm_events!(@acc [$($field)* $(#[$doc])* pub $name: u64,] [$($row)* (stringify!($name), |c: &Counters| c.$name),] $($rest)*);
    };
    ($($body:tt)*) => {
        vm_events!(@acc [] [] $($body)*);
    };
}

vm_events! {
    alloc,
    alloc_fail,
    free,
    /// A trace freed an object whose allocation had failed.
    free_noop,
    /// A trace freed an object that reclaim had already taken.
    free_reclaimed,
    touch,
    refaults,
    refault_fail,
    pgscan = pgscan_kswapd + pgscan_direct,
    pgscan_kswapd,
    pgscan_direct,
    pgsteal = pgsteal_kswapd + pgsteal_direct,
    pgsteal_kswapd,
    pgsteal_direct,
    allocstall,
    kswapd_wakeups,
    fallbacks,
    steals,
    pageblock_relabels,
    global_takes,
    pcp_refills,
    pcp_drains,
    active_free_attempts,
    active_free_success,
    active_free_pages,
    /// Direct compaction runs (`__alloc_pages_direct_compact` that compacted).
    compact_stall,
    compact_fail,
    compact_success,
    /// Pages the migrate scanner looked at.
    compact_migrate_scanned,
    /// Pages the free scanner looked at.
    compact_free_scanned,
    /// Blocks isolated for migration plus free pages isolated as targets.
    compact_isolated,
    /// kcompactd runs kswapd asked for.
    compact_daemon_wake,
    /// Pages migrated.
    pgmigrate_success,
    /// Allocations served from part of another type's pageblock (mobility's
    /// `__rmqueue_fallback` taking less than a pageblock: an
    /// `mm_page_alloc_extfrag` event with fragmenting=1).
    pageblock_fallback,
    /// Free blocks an allocation took from a list other than their
    /// pageblock's type (the "Pagealloc type mismatch" of Weiner's freelist
    /// hygiene series; 0 with `freelist_hygiene`).
    type_mismatch,
    /// THP faults that got a huge page (`thp_fault_alloc`).
    thp_fault_alloc,
    /// THP faults that fell back to a base page (`thp_fault_fallback`).
    thp_fault_fallback,
    /// `mm_page_alloc_extfrag` events: every allocation served from another
    /// type's free lists (`__rmqueue_fallback`).
    mm_page_alloc_extfrag,
    /// Slab objects allocated (OP_SLAB_ALLOC and refaults).
    slab_alloc,
    /// Slab objects freed (by the trace or a shrinker).
    slab_free,
    /// Slab pages allocated (`cache_grow`).
    slab_pages_alloc,
    /// Slab pages freed with their last object.
    slab_pages_free,
    /// Objects a shrinker looked at (the kernel's `slabs_scanned`).
    slabs_scanned,
    /// Objects a shrinker freed.
    slab_reclaimed,
    /// Reclaimed slab objects allocated again (a touch, or a pinner faulting back).
    slab_refaults,
    /// Inactive pages moved to the active list (referenced twice, or found
    /// referenced by the inactive scan).
    pgactivate,
    /// Active pages moved to the inactive list by `refill_inactive_zone`.
    pgdeactivate,
    /// Active-list pages scanned by `refill_inactive_zone`.
    pgrefill,
    /// Tasks the OOM killer killed.
    oom_kill,
    /// Pages freed by the OOM kills.
    oom_kill_pages,
    /// Trace operations of killed tasks dropped (their remaining work).
    oom_dropped,
    /// Allocations that would have called the OOM killer, failed because it is off.
    oom_fail,
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn names_sums_and_deltas() {
        let c = Counters {
            pgscan_kswapd: 2,
            pgscan_direct: 3,
            ..Counters::default()
        };
        let pairs = c.as_pairs();
        assert_eq!(pairs.len(), 52);
        assert_eq!(pairs[0], ("alloc", 0));
        assert_eq!(pairs[8], ("pgscan", 5));
        assert_eq!(pairs[24], ("active_free_pages", 0));
        let mut after = c.clone();
        after.pgscan_direct += 4;
        let d = after.delta(&c);
        assert_eq!((d[8], d[10]), (("pgscan", 4), ("pgscan_direct", 4)));
    }
}

/// One `mm_page_alloc_extfrag` event, kept when the machine was built with
/// `trace_extfrag` (`crate::ftrace::extfrag` writes them as the kernel's trace text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtfragEvent {
    /// Simulated time of the event.
    pub ns: u64,
    /// The allocating task (the trace record's pid; 0 outside a trace).
    pub pid: u32,
    /// First pfn of the free block taken.
    pub pfn: u32,
    pub alloc_order: u8,
    pub fallback_order: u8,
    /// kmm's type numbers (`mm::page::LT_*`).
    pub alloc_type: u8,
    pub fallback_type: u8,
    /// The pageblock is the requester's type afterwards.
    pub change_ownership: bool,
}
