//! Byte scanners of the dump-text parser: 16 bytes at a time with SSE2 (the
//! x86_64 baseline), else 8 at a time (SWAR).

/// Offset of the first `\n`, 8 bytes at a time.
#[inline]
pub(crate) fn find_newline(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut i = 0;
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().unwrap()) ^ NL;
        let t = w.wrapping_sub(LO) & !w & HI;
        if t != 0 {
            return Some(i + (t.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'\n').map(|p| p + i)
}

/// Offset of the first control byte other than tab (binary data, or the
/// newline that ends a clean line), 16 bytes at a time.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn first_control(b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8,
        _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut i = 0;
    // SAFETY: SSE2 is in every x86_64 CPU; each unaligned 16-byte load lies within `b`.
    unsafe {
        let below = _mm_set1_epi8(0x1f);
        let tab = _mm_set1_epi8(b'\t' as i8);
        while i + 16 <= b.len() {
            let v = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
            // v <= 0x1f (unsigned) and v != '\t'
            let ctrl = _mm_cmpeq_epi8(_mm_min_epu8(v, below), v);
            let m = _mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctrl)) as u32;
            if m != 0 {
                return Some(i + m.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    first_control_swar(&b[i..]).map(|p| p + i)
}

/// [`first_control`] elsewhere.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(crate) fn first_control(b: &[u8]) -> Option<usize> {
    first_control_swar(b)
}

/// Offset of the first control byte other than tab, 8 bytes at a time.
#[inline]
fn first_control_swar(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let t = w.wrapping_sub(LO * 0x20) & !w & HI;
        if t != 0 {
            let j = i + (t.trailing_zeros() / 8) as usize;
            if b[j] != b'\t' {
                return Some(j);
            }
            // a tab: look at the rest byte by byte
            return b[j + 1..]
                .iter()
                .position(|&c| c < 0x20 && c != b'\t')
                .map(|p| p + j + 1);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c < 0x20 && c != b'\t')
        .map(|p| p + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_helpers() {
        for n in 0..40 {
            let mut v = vec![b'a'; n];
            assert_eq!(find_newline(&v), None);
            assert_eq!(first_control(&v), None);
            // a tab before a control byte
            if n >= 2 {
                v[0] = b'\t';
                v[n - 1] = 1;
                assert_eq!(first_control(&v), Some(n - 1));
                assert_eq!(first_control_swar(&v), Some(n - 1));
                v[0] = b'a';
                v[n - 1] = b'a';
            }
            for k in 0..n {
                v[k] = b'\n';
                assert_eq!(find_newline(&v), Some(k));
                assert_eq!(first_control(&v), Some(k));
                assert_eq!(first_control_swar(&v), Some(k));
                v[k] = b'\t';
                assert_eq!(first_control(&v), None);
                assert_eq!(first_control_swar(&v), None);
                for c in [0u8, 0x1f, 0x20, 0x7f, 0x80, 0xff] {
                    v[k] = c;
                    let want = (c < 0x20).then_some(k);
                    assert_eq!(first_control(&v), want);
                    assert_eq!(first_control_swar(&v), want);
                }
                v[k] = b'a';
            }
        }
    }
}
