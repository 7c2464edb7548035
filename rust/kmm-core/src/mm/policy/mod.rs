//! The allocator policies and the one place that dispatches on them: every
//! `match` on [`Policy`] in the engine is in this file. A policy's own
//! mechanisms live in its file: [`vanilla`] (2.6.11), [`antifrag`] (Gorman's
//! 2005 v7/v8 anti-fragmentation) and [`mobility`] (today's grouping by
//! mobility). A new policy adds a variant to [`Policy`] (declared here), a
//! file, and an arm to each `match` here; the compiler lists every arm, and no
//! other file changes.
//!
//! The dispatch is a `match` on a `Copy` enum, inlined into the hot paths.

pub mod antifrag;
pub mod mobility;
pub mod vanilla;

use super::machine::Machine;
use super::mmzone::Zone;
use super::page::NR_LISTS;
use crate::error::Error;
use crate::MAX_ORDER;

/// Which allocator policy runs the free lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// 2.6.11 buddy allocator: one free list per order.
    Vanilla,
    /// Mel Gorman's v7 anti-fragmentation allocator (Feb 2005).
    AntiFrag,
    /// Grouping pages by mobility (2.6.24 and later).
    Mobility,
}

impl Policy {
    /// Every policy, oldest first.
    pub const ALL: [Policy; 3] = [Policy::Vanilla, Policy::AntiFrag, Policy::Mobility];

    /// A policy by its [`Policy::name`].
    pub fn parse(s: &str) -> crate::Result<Policy> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Policy::ALL
                    .iter()
                    .map(|p| format!("{:?}", p.name()))
                    .collect();
                Error::Config(format!(
                    "unknown allocator {s:?} (expected one of {})",
                    names.join(", ")
                ))
            })
    }
    /// The pageblock order in effect: grouping by mobility groups by huge
    /// pages (`huge_page_order`, or the order the caller `given`); the others
    /// keep their usemap (antifrag) or nothing (vanilla) per maximum-order block.
    pub fn pageblock_order(self, given: Option<u32>, huge_page_order: u32) -> u32 {
        match self {
            Policy::Mobility => given.unwrap_or(huge_page_order),
            Policy::Vanilla | Policy::AntiFrag => (MAX_ORDER - 1) as u32,
        }
    }

    /// The pageblock order compaction scans in: the policy's own pageblocks
    /// where it groups by them (mobility), else the huge-page order
    /// (`HPAGE_PMD_ORDER`), as compaction on a kernel without grouping would.
    pub fn compaction_block_order(self, block_order: u32, huge_page_order: u32) -> u32 {
        match self {
            Policy::Mobility => block_order,
            Policy::Vanilla | Policy::AntiFrag => huge_page_order,
        }
    }

    /// Whether the policy's pageblock types are today's migratetypes, so a
    /// real machine's pagetypeinfo block counts apply to them.
    pub fn has_migratetypes(self) -> bool {
        match self {
            Policy::Mobility => true,
            Policy::Vanilla | Policy::AntiFrag => false,
        }
    }

    /// The name the binding, the CLI and `/proc` headers use.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Vanilla => "vanilla",
            Policy::AntiFrag => "antifrag",
            Policy::Mobility => "mobility",
        }
    }
}

/// Names of a policy's list types, as pagetypeinfo shows them, in its order.
type TypeTable = &'static [(usize, &'static str)];

#[inline]
fn types(policy: Policy) -> TypeTable {
    match policy {
        Policy::Vanilla => vanilla::TYPES,
        Policy::AntiFrag => antifrag::TYPES,
        Policy::Mobility => mobility::TYPES,
    }
}

/// The name of free-list / allocation type `list_type` under `policy`, as
/// `/proc/pagetypeinfo` and the page_owner dumps print it ("Unknown" for a
/// type the policy does not have). Vanilla has one untyped list ("Any" in
/// pagetypeinfo); its allocations are named by today's migratetypes, as
/// page_owner names them.
pub fn type_name(policy: Policy, list_type: usize) -> &'static str {
    let table = match policy {
        Policy::Vanilla | Policy::Mobility => mobility::TYPES,
        Policy::AntiFrag => antifrag::TYPES,
    };
    table
        .iter()
        .find(|&&(lt, _)| lt == list_type)
        .map_or("Unknown", |&(_, name)| name)
}

/// [`type_name`] of every list type under `policy`, indexed by list type.
pub fn type_names(policy: Policy) -> [&'static str; NR_LISTS] {
    std::array::from_fn(|lt| type_name(policy, lt))
}

/// Whether `policy` keeps a type per pageblock (usemap block): every policy
/// but vanilla.
#[inline]
pub fn has_block_types(policy: Policy) -> bool {
    match policy {
        Policy::Vanilla => false,
        Policy::AntiFrag | Policy::Mobility => true,
    }
}

/// The free lists an allocation of type `t` takes from first under `policy`.
#[inline(always)]
fn own_list(policy: Policy, t: usize) -> usize {
    match policy {
        Policy::Vanilla => vanilla::LIST,
        Policy::AntiFrag | Policy::Mobility => t,
    }
}

/// Which per-cpu list holds pages of list type `t` under `policy`.
#[inline(always)]
pub(crate) fn pcp_list_in(policy: Policy, t: usize) -> usize {
    match policy {
        Policy::Mobility => t,
        Policy::Vanilla | Policy::AntiFrag => 0,
    }
}

/// A policy known at compile time. The hot paths (the order-0 alloc and
/// free fast paths, `__free_one_page`) are generic over it: one copy per
/// policy, in which every `match` below on `P::POLICY` folds away. They are
/// entered through one `match self.policy` each, here
/// ([`Machine::alloc_fast`], [`Machine::free_block`], [`Machine::free_one_page`]).
pub(crate) trait PolicyKind {
    const POLICY: Policy;
}

pub(crate) struct VanillaKind;
pub(crate) struct AntiFragKind;
pub(crate) struct MobilityKind;

impl PolicyKind for VanillaKind {
    const POLICY: Policy = Policy::Vanilla;
}
impl PolicyKind for AntiFragKind {
    const POLICY: Policy = Policy::AntiFrag;
}
impl PolicyKind for MobilityKind {
    const POLICY: Policy = Policy::Mobility;
}

impl Machine {
    /// The free-list types this policy shows, as (list index, name).
    pub fn list_types(&self) -> Vec<(usize, &'static str)> {
        types(self.policy)
            .iter()
            .copied()
            .filter(|&(lt, _)| self.list_type_shown(lt))
            .collect()
    }

    #[inline]
    fn list_type_shown(&self, lt: usize) -> bool {
        match self.policy {
            Policy::AntiFrag => antifrag::shown(&self.cfg, lt),
            Policy::Vanilla | Policy::Mobility => true,
        }
    }

    /// Type names pagetypeinfo prints after the policy's own, for types the
    /// kernel it mirrors has and kmm does not model (always empty).
    pub(crate) fn unmodelled_types(&self) -> &'static [&'static str] {
        match self.policy {
            Policy::Mobility => mobility::UNMODELLED,
            Policy::Vanilla | Policy::AntiFrag => &[],
        }
    }

    /// Type of the pageblock (usemap block) holding `pfn`, as a list type;
    /// `None` under a policy without block types.
    pub fn pageblock_type(&self, pfn: u32) -> Option<usize> {
        if !has_block_types(self.policy) {
            return None;
        }
        let zi = self.zone_of_pfn(pfn as u64);
        Some(self.zones[zi].block_type[self.block_index(zi, pfn)] as usize)
    }

    // ---- boot -------------------------------------------------------------

    /// Policy state set up once the zones are free: the antifrag v8 reserve.
    pub(crate) fn policy_init(&mut self) {
        match self.policy {
            Policy::AntiFrag => self.setup_fallback_reserve(),
            Policy::Vanilla | Policy::Mobility => {}
        }
    }

    /// `memmap_init_zone`'s pageblock marking, before the zone's memory is freed.
    pub(crate) fn memmap_init_block_types(&mut self, zi: usize) {
        match self.policy {
            Policy::Mobility => self.zones[zi].block_type.fill(mobility::BOOT_TYPE as u8),
            Policy::Vanilla | Policy::AntiFrag => {}
        }
    }

    /// The list a block of `order` at zone-relative `rel` goes on when boot frees it.
    pub(crate) fn boot_free_type(&mut self, zi: usize, rel: u64, order: u32) -> usize {
        match self.policy {
            Policy::Vanilla => vanilla::LIST,
            Policy::AntiFrag => self.antifrag_boot_type(zi, rel, order),
            Policy::Mobility => mobility::BOOT_TYPE,
        }
    }

    // ---- allocation -------------------------------------------------------

    /// `__rmqueue`: take a block of `order` for allocation type `t` under the
    /// machine's policy, falling back to other types as the policy allows
    /// (under `ALLOC_NOFRAGMENT`, `nofragment`, only by whole pageblocks).
    /// The type's own lists first (inline: the common case), then the
    /// policy's fallbacks (out of line).
    #[inline(always)]
    pub(crate) fn rmqueue(
        &mut self,
        zi: usize,
        order: u32,
        t: usize,
        nofragment: bool,
    ) -> Option<u32> {
        if let Some(p) = self.rmqueue_own(self.policy, zi, order, t) {
            return Some(p);
        }
        self.rmqueue_fallback_policy(zi, order, t, nofragment)
    }

    /// [`Machine::rmqueue_own`] for order 0: the own order-0 list's head
    /// when it has one, else the general split.
    #[inline(always)]
    pub(crate) fn rmqueue_order0_own(
        &mut self,
        policy: Policy,
        zi: usize,
        t: usize,
    ) -> Option<u32> {
        let own = own_list(policy, t);
        let p = match self.rmqueue_order0_head(zi, own) {
            Some(p) => p,
            None => self.rmqueue_smallest(zi, 0, own)?,
        };
        match policy {
            Policy::Mobility => self.mobility_count_mismatch(zi, p, t),
            Policy::Vanilla | Policy::AntiFrag => {}
        }
        Some(p)
    }

    /// `__rmqueue_smallest` on type `t`'s own lists under `policy` (the
    /// machine's; a constant in the generic fast paths).
    #[inline(always)]
    pub(crate) fn rmqueue_own(
        &mut self,
        policy: Policy,
        zi: usize,
        order: u32,
        t: usize,
    ) -> Option<u32> {
        let own = own_list(policy, t);
        let p = self.rmqueue_smallest(zi, order, own)?;
        match policy {
            Policy::Mobility => self.mobility_count_mismatch(zi, p, t),
            Policy::Vanilla | Policy::AntiFrag => {}
        }
        Some(p)
    }

    /// `__rmqueue` once the type's own lists are empty.
    #[inline(never)]
    fn rmqueue_fallback_policy(
        &mut self,
        zi: usize,
        order: u32,
        t: usize,
        nofragment: bool,
    ) -> Option<u32> {
        match self.policy {
            Policy::Vanilla => None,
            Policy::AntiFrag => self.rmqueue_antifrag_fallback(zi, order, t),
            Policy::Mobility => self.rmqueue_fallback(zi, order, t, nofragment),
        }
    }

    /// Whether an allocation (or free) of `order` and type `t` goes through the
    /// per-cpu lists: antifrag keeps only UserRclm pages there.
    #[inline]
    pub(crate) fn pcp_eligible(&self, order: u32, t: usize) -> bool {
        self.pcp_eligible_in(self.policy, order, t)
    }

    /// [`Machine::pcp_eligible`] under `policy`.
    #[inline(always)]
    pub(crate) fn pcp_eligible_in(&self, policy: Policy, order: u32, t: usize) -> bool {
        order == 0
            && match policy {
                Policy::AntiFrag => antifrag::pcp_type(t),
                Policy::Vanilla | Policy::Mobility => true,
            }
            && self.cfg.pcp
    }

    /// Which per-cpu list holds pages of list type `t`: mobility keeps one per type.
    #[inline]
    pub(crate) fn pcp_list(&self, t: usize) -> usize {
        pcp_list_in(self.policy, t)
    }

    /// The order-0 allocation fast path ([`Machine::alloc_fast_of`]), one
    /// copy per policy.
    #[inline(always)]
    pub(crate) fn alloc_fast(&mut self, order: u32, gfp: u32, node: usize) -> Option<u32> {
        match self.policy {
            Policy::Vanilla => self.alloc_fast_of::<VanillaKind>(order, gfp, node),
            Policy::AntiFrag => self.alloc_fast_of::<AntiFragKind>(order, gfp, node),
            Policy::Mobility => self.alloc_fast_of::<MobilityKind>(order, gfp, node),
        }
    }

    /// `__free_pages` ([`Machine::free_block_of`]), one copy per policy.
    #[inline(always)]
    pub(crate) fn free_block(&mut self, pfn: u32, direct: bool, free_stack: u32) {
        let f = self.flags[pfn as usize];
        self.free_block_flags(pfn, f, direct, free_stack);
    }

    /// [`Machine::free_block`] of the head `pfn` whose flag word `f` the
    /// caller has read.
    #[inline(always)]
    pub(crate) fn free_block_flags(&mut self, pfn: u32, f: u16, direct: bool, free_stack: u32) {
        match self.policy {
            Policy::Vanilla => self.free_block_of::<VanillaKind>(pfn, f, direct, free_stack),
            Policy::AntiFrag => self.free_block_of::<AntiFragKind>(pfn, f, direct, free_stack),
            Policy::Mobility => self.free_block_of::<MobilityKind>(pfn, f, direct, free_stack),
        }
    }

    /// `__free_one_page` ([`Machine::free_one_page_of`]), one copy per policy.
    #[inline]
    pub(crate) fn free_one_page(
        &mut self,
        zi: usize,
        pfn: u32,
        order: u32,
        pcp_type: Option<usize>,
    ) {
        match self.policy {
            Policy::Vanilla => self.free_one_page_of::<VanillaKind>(zi, pfn, order, pcp_type),
            Policy::AntiFrag => self.free_one_page_of::<AntiFragKind>(zi, pfn, order, pcp_type),
            Policy::Mobility => self.free_one_page_of::<MobilityKind>(zi, pfn, order, pcp_type),
        }
    }

    /// Active freeing takes the aligned block of `order` at `pfn` for type `t`
    /// out of the free block at `head` that was on list `lt`; returns the list
    /// the halves not taken go on. A global antifrag block becomes `t`'s; under
    /// mobility the pageblocks the taken block covers become `t`'s.
    pub(crate) fn claim_free_block(
        &mut self,
        zi: usize,
        head: u32,
        lt: usize,
        pfn: u32,
        order: u32,
        t: usize,
    ) -> usize {
        match self.policy {
            Policy::AntiFrag => self.antifrag_claim(zi, head, lt, t),
            Policy::Mobility => self.mobility_claim(zi, pfn, order, lt, t),
            Policy::Vanilla => lt,
        }
    }

    // ---- freeing ----------------------------------------------------------

    /// The list type an order-0 page of allocation type `t` at `pfn` is kept
    /// under on the per-cpu lists (`free_hot_cold_page`) under `policy`:
    /// mobility uses the pageblock's current type.
    #[inline(always)]
    pub(crate) fn pcp_free_type_in(&self, policy: Policy, zi: usize, pfn: u32, t: usize) -> usize {
        match policy {
            Policy::Mobility => self.zones[zi].block_type[self.block_index(zi, pfn)] as usize,
            Policy::Vanilla | Policy::AntiFrag => t,
        }
    }

    /// The list a block freed at zone-relative `rel` goes on before merging
    /// (`get_pfnblock_migratetype`) under `policy`; `pcp_type` is the type a
    /// page leaving a per-cpu list was kept under.
    #[inline(always)]
    pub(crate) fn free_list_type_in(
        &self,
        policy: Policy,
        zi: usize,
        rel: u64,
        pcp_type: Option<usize>,
    ) -> usize {
        let block = || self.zones[zi].block_type[(rel >> self.block_order) as usize] as usize;
        match policy {
            Policy::Vanilla => vanilla::LIST,
            Policy::AntiFrag => block(),
            // freelist hygiene: the pageblock's type when the page reaches the
            // buddy lists, never the stale one it was kept under on a pcp list
            Policy::Mobility if self.cfg.freelist_hygiene => block(),
            Policy::Mobility => pcp_type.unwrap_or_else(block),
        }
    }

    /// [`Machine::free_list_type_in`] under the machine's policy.
    #[inline]
    pub(crate) fn free_list_type(&self, zi: usize, rel: u64, pcp_type: Option<usize>) -> usize {
        self.free_list_type_in(self.policy, zi, rel, pcp_type)
    }

    /// The list the merged free block of `order` at zone-relative `rel` goes on
    /// (`lt` is the freed block's) under `policy`: a whole maximum-order block
    /// returns to antifrag's global list; a block larger than a pageblock
    /// carries one type.
    #[inline(always)]
    pub(crate) fn merged_list_type_in(
        &mut self,
        policy: Policy,
        zi: usize,
        rel: u64,
        order: u32,
        lt: usize,
    ) -> usize {
        match policy {
            Policy::AntiFrag => self.antifrag_merged_type(zi, rel, order, lt),
            Policy::Mobility => self.mobility_merged_type(zi, rel, order, lt),
            Policy::Vanilla => lt,
        }
    }

    /// [`Machine::merged_list_type_in`] under the machine's policy.
    #[inline]
    pub(crate) fn merged_list_type(&mut self, zi: usize, rel: u64, order: u32, lt: usize) -> usize {
        self.merged_list_type_in(self.policy, zi, rel, order, lt)
    }

    // ---- invariants -------------------------------------------------------

    /// The policy's invariants on one free block of `order` at `pfn` on list `lt`.
    pub(crate) fn check_free_block_type(
        &self,
        z: &Zone,
        pfn: u64,
        order: usize,
        lt: usize,
    ) -> Result<(), String> {
        match self.policy {
            Policy::Vanilla => vanilla::check_free_block(pfn, lt),
            Policy::AntiFrag => self.antifrag_check_free_block(z, pfn, order, lt),
            Policy::Mobility => {
                mobility::check_free_block(pfn, lt)?;
                if self.cfg.freelist_hygiene {
                    self.check_hygiene(z, pfn, order, lt)?;
                }
                Ok(())
            }
        }
    }

    /// The policy's invariants on a zone's block types.
    pub(crate) fn check_block_types(&self, z: &Zone) -> Result<(), String> {
        match self.policy {
            Policy::AntiFrag => self.antifrag_check_usemap(z),
            Policy::Vanilla | Policy::Mobility => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{type_name, Policy};
    use crate::mm::page::NR_LISTS;

    #[test]
    fn type_names_per_policy() {
        let names = |p| (0..=NR_LISTS).map(|t| type_name(p, t)).collect::<Vec<_>>();
        let modern = [
            "Unmovable",
            "Reclaimable",
            "Movable",
            "Unknown",
            "Unknown",
            "Unknown",
        ];
        assert_eq!(names(Policy::Vanilla), modern);
        assert_eq!(names(Policy::Mobility), modern);
        assert_eq!(
            names(Policy::AntiFrag),
            [
                "KernNoRclm",
                "KernRclm",
                "UserRclm",
                "Fallback",
                "Global",
                "Unknown"
            ]
        );
    }
}
