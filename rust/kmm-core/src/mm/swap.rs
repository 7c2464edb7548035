//! The LRU lists' page operations (the kernel's `mm/swap.c` of 2.6.11):
//! `lru_cache_add`, `activate_page`, `mark_page_accessed` and taking a page
//! off its list. Each zone keeps two lists of trace objects (`Zone::active`,
//! `Zone::inactive`); whether an object is on the active one and its
//! referenced bit live in its state (`OBJ_ACTIVE`, `OBJ_REF`), so migration,
//! which keeps the object id and moves only its block, keeps its list place.
//! The scans that move pages between the lists are in `mm::vmscan`.
//!
//! Mapped pages: an LRU block of a trace object that belongs to its task
//! (`TF_TASK`, `Objects::owner`) is anonymous memory, mapped by that task
//! (`page_mapped`, `PageAnon`); page cache is never owned by a task in a
//! trace (it outlives its readers), so it is unmapped. Each zone counts its
//! mapped pages (`Zone::nr_mapped`, 2.6.11's `nr_mapped`) as they join and
//! leave its lists, so the count is O(1) to keep; migration keeps an object
//! in its zone and on its list, so it does not change it.

use super::machine::Machine;
use super::objects::{OBJ_ACTIVE, OBJ_REF, OBJ_UNEVICTABLE};
use super::page::{forder, list_add, list_del, F_LRU};
use crate::NONE;

impl Machine {
    /// Pages of the block object `obj` holds.
    #[inline]
    pub(crate) fn obj_pages(&self, obj: u32) -> u64 {
        1u64 << forder(self.flags[self.objs.pfn[obj as usize] as usize])
    }

    /// Is `obj`'s block mapped: anonymous memory of its task (`TF_TASK`)?
    #[inline]
    pub(crate) fn obj_mapped(&self, obj: u32) -> bool {
        self.objs.owner[obj as usize] != NONE
    }

    /// Could reclaim free `obj`'s block (an LRU object): not unevictable,
    /// and not an anonymous page on a machine without swap.
    #[inline]
    pub(crate) fn obj_evictable(&self, obj: u32) -> bool {
        self.objs.state[obj as usize] & OBJ_UNEVICTABLE == 0
            && (self.cfg.swap || !self.obj_mapped(obj))
    }

    /// `lru_cache_add`: a new page goes to the head of zone `zi`'s inactive
    /// list, not referenced (2.6.11 adds page cache pages there; a page used
    /// again earns the active list through `mark_page_accessed`). An
    /// anonymous page goes to the head of the active list instead
    /// (`lru_cache_add_active`, as 2.6.11's `do_anonymous_page` adds it).
    #[inline]
    pub(crate) fn lru_add(&mut self, zi: usize, obj: u32, pages: u64) {
        let mapped = self.obj_mapped(obj);
        let st = &mut self.objs.state[obj as usize];
        *st &= !(OBJ_ACTIVE | OBJ_REF);
        if mapped {
            *st |= OBJ_ACTIVE;
        }
        let z = &mut self.zones[zi];
        let l = if mapped {
            z.nr_mapped += pages;
            z.anon_lru += pages;
            z.active_pages += pages;
            &mut z.active
        } else {
            &mut z.inactive
        };
        list_add(&mut self.objs.lru_next, &mut self.objs.lru_prev, l, obj);
        z.lru_pages += pages;
    }

    /// `add_page_to_lru_list(LRU_UNEVICTABLE)`: an unevictable object's block
    /// goes to zone `zi`'s unevictable list, which reclaim never scans.
    #[inline]
    pub(crate) fn lru_add_unevictable(&mut self, zi: usize, obj: u32, pages: u64) {
        self.objs.state[obj as usize] &= !(OBJ_ACTIVE | OBJ_REF);
        let mapped = self.obj_mapped(obj);
        let z = &mut self.zones[zi];
        if mapped {
            z.nr_mapped += pages;
        }
        list_add(
            &mut self.objs.lru_next,
            &mut self.objs.lru_prev,
            &mut z.unevictable,
            obj,
        );
        z.unevictable_pages += pages;
    }

    /// Take object `obj` off whichever of zone `zi`'s lists it is on and clear
    /// its block's LRU flag (`del_page_from_lru`).
    #[inline]
    pub(crate) fn lru_del(&mut self, zi: usize, obj: u32) {
        let pfn = self.objs.pfn[obj as usize];
        let pages = 1u64 << forder(self.flags[pfn as usize]);
        self.flags[pfn as usize] &= !F_LRU;
        let mapped = self.obj_mapped(obj);
        if mapped {
            self.zones[zi].nr_mapped -= pages;
        }
        if self.objs.state[obj as usize] & OBJ_UNEVICTABLE != 0 {
            let z = &mut self.zones[zi];
            let (n, p) = (&mut self.objs.lru_next, &mut self.objs.lru_prev);
            list_del(n, p, &mut z.unevictable, obj);
            z.unevictable_pages -= pages;
            return;
        }
        let active = self.objs.state[obj as usize] & OBJ_ACTIVE != 0;
        self.objs.state[obj as usize] &= !(OBJ_ACTIVE | OBJ_REF);
        let z = &mut self.zones[zi];
        if mapped {
            z.anon_lru -= pages;
        }
        let l = if active {
            z.active_pages -= pages;
            &mut z.active
        } else {
            &mut z.inactive
        };
        list_del(&mut self.objs.lru_next, &mut self.objs.lru_prev, l, obj);
        z.lru_pages -= pages;
    }

    /// `activate_page`: move an inactive object to the head of the active list.
    #[inline]
    pub(crate) fn activate(&mut self, zi: usize, obj: u32) {
        let pages = self.obj_pages(obj);
        self.objs.state[obj as usize] |= OBJ_ACTIVE;
        let z = &mut self.zones[zi];
        let (n, p) = (&mut self.objs.lru_next, &mut self.objs.lru_prev);
        list_del(n, p, &mut z.inactive, obj);
        list_add(n, p, &mut z.active, obj);
        z.active_pages += pages;
        self.counters.pgactivate += 1;
    }

    /// Move an active object to the head of the inactive list (the
    /// deactivation half of `refill_inactive_zone`).
    #[inline]
    pub(crate) fn deactivate(&mut self, zi: usize, obj: u32) {
        let pages = self.obj_pages(obj);
        self.objs.state[obj as usize] &= !OBJ_ACTIVE;
        let z = &mut self.zones[zi];
        let (n, p) = (&mut self.objs.lru_next, &mut self.objs.lru_prev);
        list_del(n, p, &mut z.active, obj);
        list_add(n, p, &mut z.inactive, obj);
        z.active_pages -= pages;
        self.counters.pgdeactivate += 1;
    }

    /// `mark_page_accessed` (a touch of an LRU object): an inactive page
    /// already referenced is activated and its bit cleared; any other page not
    /// yet referenced gets the bit.
    #[inline]
    pub(crate) fn mark_page_accessed(&mut self, zi: usize, obj: u32) {
        let st = self.objs.state[obj as usize];
        if st & OBJ_UNEVICTABLE != 0 {
            return; // on the unevictable list: no aging
        }
        if st & OBJ_ACTIVE == 0 && st & OBJ_REF != 0 {
            self.activate(zi, obj);
            self.objs.state[obj as usize] &= !OBJ_REF;
        } else if st & OBJ_REF == 0 {
            self.objs.state[obj as usize] |= OBJ_REF;
        }
    }
}
