//! The kernel's gfp flag names, as `include/trace/events/mmflags.h` prints
//! them in `gfp_flags=`, mapped to kmm's 2.6.11-era gfp bits.

use crate::gfp;

/// Kernel (6.x `include/trace/events/mmflags.h`) gfp names -> kmm's 2.6.11-era bits.
/// Modern modifiers with no 2.6.11 meaning (accounting, hardwall, KASAN, ...)
/// map to 0: they do not change where a page goes. `__GFP_DIRECT_RECLAIM` is
/// 2.6.11's `__GFP_WAIT`; `__GFP_RETRY_MAYFAIL` its `__GFP_REPEAT`.
const KERNEL_GFP: &[(&str, u32)] = {
    use gfp::*;
    const RECLAIM: u32 = __GFP_WAIT; // __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
    const KERNEL: u32 = RECLAIM | __GFP_IO | __GFP_FS;
    const HIGHUSER_MOVABLE: u32 = KERNEL | __GFP_HIGHMEM | __GFP_MOVABLE;
    &[
        (
            "GFP_TRANSHUGE",
            HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOWARN,
        ),
        (
            "GFP_TRANSHUGE_LIGHT",
            (HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOWARN) & !__GFP_WAIT,
        ),
        ("GFP_HIGHUSER_MOVABLE", HIGHUSER_MOVABLE),
        ("GFP_HIGHUSER", KERNEL | __GFP_HIGHMEM),
        ("GFP_USER", KERNEL),
        ("GFP_KERNEL_ACCOUNT", KERNEL),
        ("GFP_KERNEL", KERNEL),
        ("GFP_NOFS", RECLAIM | __GFP_IO),
        ("GFP_ATOMIC", __GFP_HIGH),
        ("GFP_NOIO", RECLAIM),
        ("GFP_NOWAIT", 0),
        ("GFP_DMA", __GFP_DMA),
        ("GFP_DMA32", __GFP_DMA32),
        ("__GFP_HIGH", __GFP_HIGH),
        ("__GFP_IO", __GFP_IO),
        ("__GFP_FS", __GFP_FS),
        ("__GFP_DIRECT_RECLAIM", __GFP_WAIT),
        ("__GFP_KSWAPD_RECLAIM", 0),
        ("__GFP_RECLAIM", __GFP_WAIT),
        ("__GFP_NOWARN", __GFP_NOWARN),
        ("__GFP_RETRY_MAYFAIL", __GFP_REPEAT),
        ("__GFP_NOFAIL", __GFP_NOFAIL),
        ("__GFP_NORETRY", __GFP_NORETRY),
        ("__GFP_COMP", __GFP_COMP),
        ("__GFP_ZERO", __GFP_ZERO),
        ("__GFP_HIGHMEM", __GFP_HIGHMEM),
        ("__GFP_DMA", __GFP_DMA),
        ("__GFP_DMA32", __GFP_DMA32),
        ("__GFP_MOVABLE", __GFP_MOVABLE),
        ("__GFP_RECLAIMABLE", __GFP_RECLAIMABLE),
        ("__GFP_NOMEMALLOC", 0),
        ("__GFP_MEMALLOC", 0),
        ("__GFP_HARDWALL", 0),
        ("__GFP_THISNODE", 0),
        ("__GFP_ACCOUNT", 0),
        ("__GFP_WRITE", 0),
        ("__GFP_NOLOCKDEP", 0),
        ("__GFP_NO_OBJ_EXT", 0),
        ("__GFP_SKIP_ZERO", 0),
        ("__GFP_SKIP_KASAN", 0),
        ("__GFP_ZEROTAGS", 0),
        ("__GFP_UNMAPPED", 0),
        ("none", 0),
    ]
};

/// Map the kernel's `gfp_flags=` text (names joined by `|`, leftover bits as
/// hex) to kmm's gfp bits; returns (mask, names kmm does not know). The mask
/// always passes [`gfp::validate`]: a zone modifier wins over `__GFP_HIGHMEM`
/// (the kernel's own `gfp_zone` order), `__GFP_MOVABLE` over
/// `__GFP_RECLAIMABLE`.
pub fn map_gfp(text: &[u8]) -> (u32, u32) {
    let mut mask = 0u32;
    let mut unknown = 0u32;
    for name in text.split(|&b| b == b'|') {
        if name.is_empty() || name.starts_with(b"0x") {
            // leftover bits the kernel has no name for: no kmm meaning
            continue;
        }
        match KERNEL_GFP.iter().find(|(n, _)| n.as_bytes() == name) {
            Some(&(_, v)) => mask |= v,
            None => unknown += 1,
        }
    }
    use gfp::*;
    if mask & (__GFP_DMA | __GFP_DMA32) != 0 {
        mask &= !__GFP_HIGHMEM;
        if mask & __GFP_DMA != 0 {
            mask &= !__GFP_DMA32;
        }
    }
    if mask & __GFP_MOVABLE != 0 {
        mask &= !__GFP_RECLAIMABLE;
    }
    (mask, unknown)
}
