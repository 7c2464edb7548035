//! The page map's encoding, readable without the allocator (the kernel's
//! `mm/internal.h` and `page-flags.h`): the `u16` flag word of every pfn, the
//! free-list and allocation types, the `page_map()` codes, and the intrusive
//! lists threaded through the per-pfn `next`/`prev` arrays (`page->lru`).
//!
//! Flag word: bits 0-2 kind, 3-6 order, 7-9 list/alloc type, 10 on-LRU,
//! 11 owned by a trace object, 12 a slab page.

use crate::NONE;

pub const KIND_MASK: u16 = 0b111;
/// Not a head: inside a larger block, or never initialised.
pub const K_TAIL: u16 = 0;
/// Head of a free block on a buddy list (`PageBuddy`).
pub const K_FREE: u16 = 1;
/// Head of an allocated block.
pub const K_ALLOC: u16 = 2;
/// An order-0 page on a per-cpu list.
pub const K_PCP: u16 = 3;
/// Reserved at boot (`PageReserved`), never freed.
pub const K_RESERVED: u16 = 4;
const ORDER_SHIFT: u16 = 3;
const TYPE_SHIFT: u16 = 7;
/// The block is on its zone's LRU (`PageLRU`).
pub const F_LRU: u16 = 1 << 10;
/// The block belongs to a trace object; `next[pfn]` holds the object id.
pub const F_OBJ: u16 = 1 << 11;
/// The block is a slab page (`PageSlab`); `next[pfn]` holds its slab descriptor.
pub const F_SLAB: u16 = 1 << 12;

/// Kind of a flag word (`K_*`).
#[inline]
pub fn kind(f: u16) -> u16 {
    f & KIND_MASK
}

/// Order of the block a head's flag word describes.
#[inline]
pub fn forder(f: u16) -> u32 {
    ((f >> ORDER_SHIFT) & 0xf) as u32
}

/// List type (free or pcp page) or allocation type (allocated head) of a flag word.
#[inline]
pub fn ftype(f: u16) -> usize {
    ((f >> TYPE_SHIFT) & 0x7) as usize
}

/// The flag word of a head of kind `k`, order `order`, type `t`.
#[inline]
pub fn mkflags(k: u16, order: u32, t: usize) -> u16 {
    k | ((order as u16) << ORDER_SHIFT) | ((t as u16) << TYPE_SHIFT)
}

// ---- free list types ------------------------------------------------------
// Types 0..=2 are also the allocation types (`gfp::AllocType`).

/// KernNoRclm (2005) / Unmovable (today); vanilla keeps all free blocks here.
pub const LT_NORCLM: usize = 0;
/// KernRclm / Reclaimable.
pub const LT_KERNRCLM: usize = 1;
/// UserRclm / Movable.
pub const LT_USERRCLM: usize = 2;
/// Antifrag v8 fallback reserve blocks.
pub const LT_FALLBACK: usize = 3;
/// Antifrag `free_area_global`: maximum-order blocks owned by no type.
pub const LT_GLOBAL: usize = 4;
pub const NR_LISTS: usize = 5;

// ---- page_map() codes -----------------------------------------------------

pub const PM_FREE: u8 = 0;
pub const PM_PCP: u8 = 1;
pub const PM_RESERVED: u8 = 2;
/// Allocated pages: `PM_ALLOC + AllocType` (3 KernNoRclm, 4 KernRclm, 5 UserRclm).
pub const PM_ALLOC: u8 = 3;

// ---- intrusive lists ------------------------------------------------------

/// An intrusive doubly linked list over pfns (or object ids, for the LRU).
#[derive(Debug, Clone, Copy)]
pub struct ListHead {
    pub head: u32,
    pub tail: u32,
    pub nr: u32,
}

impl Default for ListHead {
    fn default() -> Self {
        ListHead {
            head: NONE,
            tail: NONE,
            nr: 0,
        }
    }
}

/// `list_add`: push `x` at the head of `l`.
#[inline(always)]
pub fn list_add(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    prev[x as usize] = NONE;
    next[x as usize] = l.head;
    if l.head != NONE {
        prev[l.head as usize] = x;
    } else {
        l.tail = x;
    }
    l.head = x;
    l.nr += 1;
}

/// `list_add_tail`: append `x` to `l`.
#[inline(always)]
pub fn list_add_tail(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    next[x as usize] = NONE;
    prev[x as usize] = l.tail;
    if l.tail != NONE {
        next[l.tail as usize] = x;
    } else {
        l.head = x;
    }
    l.tail = x;
    l.nr += 1;
}

/// `list_del`: unlink `x` from `l`.
#[inline(always)]
pub fn list_del(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    let n = next[x as usize];
    let p = prev[x as usize];
    if p != NONE {
        next[p as usize] = n;
    } else {
        l.head = n;
    }
    if n != NONE {
        prev[n as usize] = p;
    } else {
        l.tail = p;
    }
    l.nr -= 1;
}

/// [`list_add`] for the per-cpu fast path, without bounds checks.
///
/// # Safety
/// `x` and every member of `l` must be in bounds of `next` and `prev` (on
/// the machine's lists: pfns of its map, which `next` and `prev` span).
#[inline(always)]
pub unsafe fn list_add_unchecked(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    debug_assert!((x as usize) < next.len() && (x as usize) < prev.len());
    debug_assert!(l.head == NONE || (l.head as usize) < prev.len());
    // SAFETY: the caller's contract, checked above in debug builds
    unsafe {
        *prev.get_unchecked_mut(x as usize) = NONE;
        *next.get_unchecked_mut(x as usize) = l.head;
        if l.head != NONE {
            *prev.get_unchecked_mut(l.head as usize) = x;
        } else {
            l.tail = x;
        }
    }
    l.head = x;
    l.nr += 1;
}

/// [`list_del`] for the per-cpu fast path, without bounds checks.
///
/// # Safety
/// `x` must be a member of `l`, and every member of `l` in bounds of `next`
/// and `prev` (as for [`list_add_unchecked`]).
#[inline(always)]
pub unsafe fn list_del_unchecked(next: &mut [u32], prev: &mut [u32], l: &mut ListHead, x: u32) {
    debug_assert!((x as usize) < next.len() && (x as usize) < prev.len());
    // SAFETY: the caller's contract; a member's links are members or NONE
    unsafe {
        let n = *next.get_unchecked(x as usize);
        let p = *prev.get_unchecked(x as usize);
        debug_assert!(n == NONE || (n as usize) < prev.len());
        debug_assert!(p == NONE || (p as usize) < next.len());
        if p != NONE {
            *next.get_unchecked_mut(p as usize) = n;
        } else {
            l.head = n;
        }
        if n != NONE {
            *prev.get_unchecked_mut(n as usize) = p;
        } else {
            l.tail = p;
        }
    }
    l.nr -= 1;
}

// ---- the per-pfn arrays ---------------------------------------------------

/// A zeroed per-pfn array. Zeroed memory is mapped lazily; on Linux we ask for
/// transparent huge pages so that touching a page head every 4 KiB at boot costs
/// one fault per 2 MiB instead of one per 4 KiB (a 1 TiB machine boots in seconds).
/// Host memory a machine may still take, in bytes: `MemAvailable` plus
/// `SwapFree` from /proc/meminfo, capped by what `RLIMIT_AS` leaves; None when
/// not known (not Linux, or /proc unreadable).
pub(crate) fn host_bytes_available() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<u64> {
            let l = text.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = l[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kb << 10)
        };
        let mut have = field("MemAvailable:")?.saturating_add(field("SwapFree:").unwrap_or(0));
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0
            && lim.rlim_cur != libc::RLIM_INFINITY
        {
            let used = std::fs::read_to_string("/proc/self/statm")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |pages| pages << 12);
            have = have.min(lim.rlim_cur.saturating_sub(used));
        }
        Some(have)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

pub(crate) fn pfn_array<T: Copy + Default>(n: usize, zero: T) -> Vec<T> {
    let v = vec![zero; n];
    advise_huge(&v);
    v
}

/// Ask the kernel to back a vector's allocation (whole 2 MiB spans of its
/// capacity, if it has 8 MiB or more) with transparent huge pages: one page
/// fault per 2 MiB instead of per 4 KiB where it is first written.
pub(crate) fn advise_huge<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        let bytes = v.capacity() * std::mem::size_of::<T>();
        const HUGE: usize = 2 << 20;
        if bytes >= 4 * HUGE {
            let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
            let end = (v.as_ptr() as usize + bytes) & !(HUGE - 1);
            if end > start {
                // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE
                // only changes how the kernel backs it and never its contents.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// The heads of a flag array in pfn order, as (pfn, flag word): a free or
/// allocated head skips its block, any other page is visited on its own.
pub fn heads(flags: &[u16]) -> impl Iterator<Item = (usize, u16)> + '_ {
    let mut p = 0usize;
    std::iter::from_fn(move || {
        let f = *flags.get(p)?;
        let at = p;
        p += match kind(f) {
            K_FREE | K_ALLOC => 1 << forder(f),
            _ => 1,
        };
        Some((at, f))
    })
}
