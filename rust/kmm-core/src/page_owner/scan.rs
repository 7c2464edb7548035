//! Byte scanners of the dump-text parser, 8 bytes at a time (SWAR).

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

/// Offset of the first control byte other than tab (binary data), 8 bytes at a time.
#[inline]
pub(crate) fn first_control(b: &[u8]) -> Option<usize> {
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
            for k in 0..n {
                v[k] = b'\n';
                assert_eq!(find_newline(&v), Some(k));
                assert_eq!(first_control(&v), Some(k));
                v[k] = b'\t';
                assert_eq!(first_control(&v), None);
                v[k] = b'a';
            }
        }
    }
}
