//! GFP flags as in 2.6.11 `include/linux/gfp.h`, plus Mel Gorman's 2005
//! `__GFP_KERNRCLM` / `__GFP_USERRCLM` and `__GFP_DMA32` (2.6.15).

use crate::error::{Error, Result};

pub const __GFP_DMA: u32 = 0x01;
pub const __GFP_HIGHMEM: u32 = 0x02;
pub const __GFP_DMA32: u32 = 0x04;
pub const __GFP_WAIT: u32 = 0x10;
pub const __GFP_HIGH: u32 = 0x20;
pub const __GFP_IO: u32 = 0x40;
pub const __GFP_FS: u32 = 0x80;
pub const __GFP_COLD: u32 = 0x100;
pub const __GFP_NOWARN: u32 = 0x200;
pub const __GFP_REPEAT: u32 = 0x400;
pub const __GFP_NOFAIL: u32 = 0x800;
pub const __GFP_NORETRY: u32 = 0x1000;
pub const __GFP_NO_GROW: u32 = 0x2000;
pub const __GFP_COMP: u32 = 0x4000;
pub const __GFP_ZERO: u32 = 0x8000;
/// Mel Gorman 2005: reclaimable kernel allocation (dentries, inodes, buffer heads).
pub const __GFP_KERNRCLM: u32 = 0x10000;
/// Mel Gorman 2005: easily reclaimed user allocation (user pages, page cache).
pub const __GFP_USERRCLM: u32 = 0x20000;
/// 2.6.38's `__GFP_NO_KSWAPD` (Andrea Arcangeli, for THP): the request does
/// not wake kswapd. Today's masks say the same by leaving out
/// `__GFP_KSWAPD_RECLAIM`, as `GFP_TRANSHUGE_LIGHT` does.
pub const __GFP_NO_KSWAPD: u32 = 0x400000;
/// 2007 name of `__GFP_KERNRCLM`.
pub const __GFP_RECLAIMABLE: u32 = __GFP_KERNRCLM;
/// 2007 name of `__GFP_USERRCLM`.
pub const __GFP_MOVABLE: u32 = __GFP_USERRCLM;

pub const GFP_ATOMIC: u32 = __GFP_HIGH;
pub const GFP_NOIO: u32 = __GFP_WAIT;
pub const GFP_NOFS: u32 = __GFP_WAIT | __GFP_IO;
pub const GFP_KERNEL: u32 = __GFP_WAIT | __GFP_IO | __GFP_FS;
pub const GFP_USER: u32 = __GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_USERRCLM;
pub const GFP_HIGHUSER: u32 = __GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_HIGHMEM | __GFP_USERRCLM;
pub const GFP_DMA: u32 = __GFP_DMA;
pub const GFP_DMA32: u32 = __GFP_DMA32;
/// A THP fault as today's default `defrag=madvise` makes it
/// (`GFP_TRANSHUGE_LIGHT`): movable, compound, no warning, no direct reclaim
/// or compaction and no kswapd.
pub const GFP_TRANSHUGE_LIGHT: u32 =
    (GFP_HIGHUSER | __GFP_COMP | __GFP_NOWARN | __GFP_NO_KSWAPD) & !__GFP_WAIT;
/// `GFP_TRANSHUGE`: the light mask plus direct reclaim and compaction
/// (khugepaged's collapse, a madvised region's fault).
pub const GFP_TRANSHUGE: u32 = GFP_TRANSHUGE_LIGHT | __GFP_WAIT;

/// Every bit the engine understands.
pub const GFP_VALID: u32 = (0x3ffff & !0x08) | __GFP_NO_KSWAPD;

/// Modifier and composite names, in the order the kernel prints flag names.
pub const GFP_NAMES: &[(&str, u32)] = &[
    ("GFP_TRANSHUGE", GFP_TRANSHUGE),
    ("GFP_TRANSHUGE_LIGHT", GFP_TRANSHUGE_LIGHT),
    ("GFP_HIGHUSER", GFP_HIGHUSER),
    ("GFP_USER", GFP_USER),
    ("GFP_KERNEL", GFP_KERNEL),
    ("GFP_NOFS", GFP_NOFS),
    ("GFP_NOIO", GFP_NOIO),
    ("GFP_ATOMIC", GFP_ATOMIC),
    ("GFP_DMA", GFP_DMA),
    ("GFP_DMA32", GFP_DMA32),
    ("GFP_NOWAIT", 0),
    ("__GFP_DMA", __GFP_DMA),
    ("__GFP_HIGHMEM", __GFP_HIGHMEM),
    ("__GFP_DMA32", __GFP_DMA32),
    ("__GFP_WAIT", __GFP_WAIT),
    ("__GFP_HIGH", __GFP_HIGH),
    ("__GFP_IO", __GFP_IO),
    ("__GFP_FS", __GFP_FS),
    ("__GFP_COLD", __GFP_COLD),
    ("__GFP_NOWARN", __GFP_NOWARN),
    ("__GFP_REPEAT", __GFP_REPEAT),
    ("__GFP_NOFAIL", __GFP_NOFAIL),
    ("__GFP_NORETRY", __GFP_NORETRY),
    ("__GFP_NO_GROW", __GFP_NO_GROW),
    ("__GFP_COMP", __GFP_COMP),
    ("__GFP_ZERO", __GFP_ZERO),
    ("__GFP_KERNRCLM", __GFP_KERNRCLM),
    ("__GFP_USERRCLM", __GFP_USERRCLM),
    ("__GFP_RECLAIMABLE", __GFP_RECLAIMABLE),
    ("__GFP_MOVABLE", __GFP_MOVABLE),
    ("__GFP_NO_KSWAPD", __GFP_NO_KSWAPD),
];

/// Allocation type (2005) / migratetype (2007+) of a request, by reclaimability.
/// The numbering is kmm's own: 0 = KernNoRclm/Unmovable, 1 = KernRclm/Reclaimable,
/// 2 = UserRclm/Movable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AllocType {
    KernNoRclm = 0,
    KernRclm = 1,
    UserRclm = 2,
}

impl AllocType {
    #[inline]
    pub fn from_gfp(gfp: u32) -> AllocType {
        if gfp & __GFP_USERRCLM != 0 {
            AllocType::UserRclm
        } else if gfp & __GFP_KERNRCLM != 0 {
            AllocType::KernRclm
        } else {
            AllocType::KernNoRclm
        }
    }
    /// Reclaimable types sit on the LRU when they belong to a trace object.
    #[inline]
    pub fn reclaimable(self) -> bool {
        self != AllocType::KernNoRclm
    }
}

/// Whether [`validate`] accepts the mask, without building its error (the
/// allocation fast path's check).
#[inline]
pub fn valid(gfp: u32) -> bool {
    const RCLM: u32 = __GFP_KERNRCLM | __GFP_USERRCLM;
    gfp & !GFP_VALID == 0
        && (gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32)).count_ones() <= 1
        && gfp & RCLM != RCLM
}

/// Validate a mask: unknown bits and combinations the kernel forbids are errors.
pub fn validate(gfp: u32) -> Result<()> {
    if gfp & !GFP_VALID != 0 {
        return Err(Error::Gfp(format!(
            "unknown GFP bits 0x{:x} in mask 0x{gfp:x}",
            gfp & !GFP_VALID
        )));
    }
    let zone_bits = gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32);
    if zone_bits.count_ones() > 1 {
        return Err(Error::Gfp(format!(
            "GFP mask 0x{gfp:x} asks for more than one zone modifier (__GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM are exclusive)"
        )));
    }
    if gfp & __GFP_KERNRCLM != 0 && gfp & __GFP_USERRCLM != 0 {
        return Err(Error::Gfp(format!(
            "GFP mask 0x{gfp:x} sets both __GFP_KERNRCLM and __GFP_USERRCLM (__GFP_RECLAIMABLE and __GFP_MOVABLE)"
        )));
    }
    Ok(())
}

/// Parse `"GFP_KERNEL|__GFP_HIGH"` (names, `0x` hex or decimal numbers, joined by `|`).
pub fn parse(text: &str) -> Result<u32> {
    let mut mask = 0u32;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::Gfp("empty GFP string".into()));
    }
    for part in trimmed.split('|') {
        let p = part.trim();
        let v = if let Some(&(_, v)) = GFP_NAMES.iter().find(|(n, _)| *n == p) {
            v
        } else if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16)
                .map_err(|_| Error::Gfp(format!("bad GFP number {p:?} in {text:?}")))?
        } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse::<u32>()
                .map_err(|_| Error::Gfp(format!("bad GFP number {p:?} in {text:?}")))?
        } else {
            return Err(Error::Gfp(format!(
                "unknown GFP flag name {p:?} in {text:?}"
            )));
        };
        mask |= v;
    }
    validate(mask)?;
    Ok(mask)
}

/// The kernel's `%pGg` style: composite names first, then leftover modifiers.
pub fn format_names(gfp: u32) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut rest = gfp;
    for &(name, v) in GFP_NAMES {
        if v == 0 || name == "__GFP_RECLAIMABLE" || name == "__GFP_MOVABLE" {
            continue;
        }
        if rest & v == v && (v.count_ones() > 1 || name.starts_with("__")) {
            out.push(name);
            rest &= !v;
        }
    }
    if rest != 0 {
        return format!("{}|0x{rest:x}", out.join("|"));
    }
    if out.is_empty() {
        return "GFP_NOWAIT".into();
    }
    out.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_numbers() {
        assert_eq!(parse("GFP_KERNEL").unwrap(), 0xd0);
        assert_eq!(parse("GFP_KERNEL|__GFP_HIGH").unwrap(), 0xf0);
        assert_eq!(parse(" GFP_HIGHUSER ").unwrap(), 0x200d2);
        assert_eq!(parse("0x10|0x20").unwrap(), 0x30);
        assert_eq!(parse("GFP_KERNEL|__GFP_MOVABLE").unwrap(), GFP_USER);
        assert!(parse("GFP_BOGUS").is_err());
        assert!(parse("").is_err());
        assert!(parse("__GFP_DMA|__GFP_HIGHMEM").is_err());
        assert!(parse("__GFP_KERNRCLM|__GFP_USERRCLM").is_err());
        assert!(parse("0x8").is_err());
    }

    #[test]
    fn valid_agrees_with_validate() {
        // every combination of the bits the checks look at, and unknown ones
        let bits = [
            __GFP_DMA,
            __GFP_HIGHMEM,
            __GFP_DMA32,
            0x08,
            __GFP_WAIT,
            __GFP_KERNRCLM,
            __GFP_USERRCLM,
            0x40000,
            __GFP_NO_KSWAPD,
            0x800000,
            0x8000_0000,
        ];
        for combo in 0u32..1 << bits.len() {
            let gfp = (0..bits.len())
                .filter(|&i| combo & (1 << i) != 0)
                .fold(0, |g, i| g | bits[i]);
            assert_eq!(valid(gfp), validate(gfp).is_ok(), "mask {gfp:#x}");
        }
    }

    #[test]
    fn types() {
        assert_eq!(AllocType::from_gfp(GFP_KERNEL), AllocType::KernNoRclm);
        assert_eq!(AllocType::from_gfp(GFP_HIGHUSER), AllocType::UserRclm);
        assert_eq!(
            AllocType::from_gfp(GFP_KERNEL | __GFP_KERNRCLM),
            AllocType::KernRclm
        );
    }

    #[test]
    fn names() {
        assert_eq!(format_names(GFP_KERNEL), "GFP_KERNEL");
        assert_eq!(
            format_names(GFP_HIGHUSER | __GFP_ZERO),
            "GFP_HIGHUSER|__GFP_ZERO"
        );
        assert_eq!(format_names(GFP_ATOMIC), "__GFP_HIGH");
        assert_eq!(format_names(0), "GFP_NOWAIT");
        assert_eq!(format_names(GFP_TRANSHUGE), "GFP_TRANSHUGE");
        assert_eq!(format_names(GFP_TRANSHUGE_LIGHT), "GFP_TRANSHUGE_LIGHT");
        assert_eq!(parse("GFP_TRANSHUGE_LIGHT").unwrap(), 0x4242c2);
    }
}
