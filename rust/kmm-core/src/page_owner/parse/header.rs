//! The fields of a page_owner header line: the mask, pid, tgid and comm, and
//! the spans of the pid and tgid digits that a template cuts out.

use crate::page_owner::sort::find;

/// The fields of a header line a group is filtered and culled on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RecordFields {
    pub mask: Option<u64>,
    pub pid: Option<i64>,
    pub tgid: Option<i64>,
    pub comm: Option<String>,
}

/// The value and the span of the digits of an id field (`, pid 12`) of a
/// header; the span only when the digits are canonical (so printing the
/// value gives them back).
#[inline]
pub(super) fn id_field(h: &[u8], key: &[u8]) -> (Option<i64>, Option<(usize, usize)>) {
    for i in memchr::memchr_iter(b',', h) {
        if h[i..].starts_with(key) {
            let s = i + key.len();
            return match int_at(&h[s..]) {
                Some((v, n)) => {
                    let d = &h[s..s + n];
                    let canon = !(d.len() > 1 && (d[0] == b'0' || d.starts_with(b"-0")));
                    (Some(v), canon.then_some((s, s + n)))
                }
                None => (None, None),
            };
        }
    }
    (None, None)
}

/// A decimal integer, optionally negative, at the start of `b`: (value, bytes taken).
fn int_at(b: &[u8]) -> Option<(i64, usize)> {
    let neg = b.first() == Some(&b'-');
    let s = neg as usize;
    let n = b[s..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 18 {
        return None;
    }
    // at most 18 digits: no overflow
    let v = b[s..s + n]
        .iter()
        .fold(0i64, |v, &c| v * 10 + (c - b'0') as i64);
    Some((if neg { -v } else { v }, s + n))
}

/// mask, pid, tgid and comm of a (normalised) header line.
pub(super) fn parse_header_fields(h: &[u8]) -> std::result::Result<RecordFields, String> {
    let mut f = RecordFields::default();
    if let Some(i) = find(h, b", mask ") {
        let r = &h[i + 7..];
        let (digits, skip) = if r.starts_with(b"0x") || r.starts_with(b"0X") {
            (
                r[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count(),
                2,
            )
        } else {
            // "%#x" prints a zero mask as "0"
            (r.iter().take_while(|c| c.is_ascii_hexdigit()).count(), 0)
        };
        if digits == 0 || digits > 16 {
            return Err("malformed mask field (expected \", mask 0x<hex>\")".into());
        }
        f.mask = Some(
            u64::from_str_radix(std::str::from_utf8(&r[skip..skip + digits]).unwrap(), 16)
                .map_err(|_| "malformed mask value".to_string())?,
        );
    }
    if let Some(i) = find(h, b", pid ") {
        let (v, _) = int_at(&h[i + 6..]).ok_or("malformed pid field (expected \", pid <N>\")")?;
        f.pid = Some(v);
    }
    if let Some(i) = find(h, b", tgid ") {
        let r = &h[i + 7..];
        let (v, n) = int_at(r).ok_or("malformed tgid field (expected \", tgid <N> (<comm>)\")")?;
        f.tgid = Some(v);
        let r = &r[n..];
        if let Some(c) = r.strip_prefix(b" (") {
            // comm may itself contain ')': take up to the last ')' before the next field
            let end = c
                .iter()
                .rposition(|&x| x == b')')
                .ok_or("unterminated comm in tgid field")?;
            let mut e = end;
            if let Some(k) = find(&c[..end + 1], b"), ") {
                e = k;
            }
            f.comm = Some(String::from_utf8_lossy(&c[..e]).into_owned());
        }
    }
    Ok(f)
}
