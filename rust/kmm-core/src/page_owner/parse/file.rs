//! The entry points: aggregating a whole buffer, and reading a page_owner
//! text file in chunks, on several threads for a large file (cut at blank
//! lines into parts, each aggregated on its own, the parts folded together in
//! order).

use super::Aggregator;
use crate::error::{Error, Result};
use crate::page_owner::table::Filter;

/// Bytes read at a time from a file.
pub const READ_CHUNK: usize = 4 << 20;
/// Files smaller than this are read on one thread.
pub const PARALLEL_MIN: u64 = 32 << 20;

impl Aggregator {
    /// Fold in the counters and groups of `o`, which read the input that follows this one's.
    fn absorb(&mut self, o: &Aggregator) {
        let (a, b) = (&mut self.stats, &o.stats);
        a.bytes += b.bytes;
        a.lines += b.lines;
        a.records += b.records;
        a.skipped += b.skipped;
        a.records_2005 += b.records_2005;
        a.records_modern += b.records_modern;
        a.records_stacks += b.records_stacks;
        self.table.absorb(&o.table);
    }

    /// Feed everything `read_at(offset, buf)` gives from `from` until it
    /// returns 0 (end of input) or `to` is reached.
    fn feed_range(
        &mut self,
        read_at: &(impl Fn(u64, &mut [u8]) -> std::io::Result<usize> + Sync),
        from: u64,
        to: Option<u64>,
    ) -> Result<()> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut off = from;
        loop {
            let want = match to {
                Some(t) if t <= off => return Ok(()),
                Some(t) => ((t - off) as usize).min(READ_CHUNK),
                None => READ_CHUNK,
            };
            let n = read_at(off, &mut buf[..want])
                .map_err(|e| Error::Parse(format!("reading the page_owner text: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            self.feed(&buf[..n])?;
            off += n as u64;
        }
    }
}

/// Aggregate a file of `size` bytes (a hint: reading goes on to the end of
/// input) read with `read_at`, on up to `threads` threads: the file is cut at
/// blank lines into one part per thread, each part aggregated on its own and
/// the parts folded together in order, which gives what one pass gives. A bad
/// record (or `lenient`) reads it again on one thread, for exact line numbers.
pub fn aggregate_file(
    read_at: impl Fn(u64, &mut [u8]) -> std::io::Result<usize> + Sync,
    size: u64,
    threads: usize,
    lenient: bool,
    cull: u8,
    filter: Filter,
) -> Result<Aggregator> {
    let sequential = |filter: Filter| -> Result<Aggregator> {
        let mut a = Aggregator::with(lenient, cull, filter);
        a.feed_range(&read_at, 0, None)?;
        a.finish()?;
        Ok(a)
    };
    if lenient || threads <= 1 || size < PARALLEL_MIN {
        return sequential(filter);
    }
    // part boundaries: just after the first blank line past each cut
    let mut bounds = vec![0u64];
    let mut win = vec![0u8; 1 << 20];
    for k in 1..threads as u64 {
        let cut = size * k / threads as u64;
        if cut <= *bounds.last().unwrap() {
            continue;
        }
        let n = read_at(cut, &mut win)
            .map_err(|e| Error::Parse(format!("reading the page_owner text: {e}")))?;
        if let Some(i) = win[..n].windows(2).position(|w| w == b"\n\n") {
            bounds.push(cut + i as u64 + 2);
        }
    }
    let parts = bounds.len();
    let results: Vec<Result<Aggregator>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..parts)
            .map(|p| {
                let from = bounds[p];
                let to = bounds.get(p + 1).copied();
                let read_at = &read_at;
                let filter = filter.clone();
                sc.spawn(move || -> Result<Aggregator> {
                    let mut a = Aggregator::with(false, cull, filter);
                    a.feed_range(read_at, from, to)?;
                    a.finish()?;
                    Ok(a)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Parse("an aggregation thread failed".into())))
            })
            .collect()
    });
    if results.iter().any(|r| r.is_err()) {
        return sequential(filter);
    }
    let mut it = results.into_iter().map(|r| r.unwrap());
    let mut first = it.next().expect("at least one part");
    for o in it {
        first.absorb(&o);
    }
    Ok(first)
}

/// Aggregate a whole buffer (tests and small inputs).
pub fn aggregate_bytes(b: &[u8], lenient: bool) -> Result<Aggregator> {
    let mut a = Aggregator::new(lenient);
    a.feed(b)?;
    a.finish()?;
    Ok(a)
}

/// [`aggregate_file`] on an open file: a regular file is read at offsets on
/// up to `threads` threads; anything else (a pipe, `/proc`, debugfs) is read
/// front to back on one, never `stat()`ed by path. `read_bytes`, if given,
/// counts the bytes read so far (for a progress bar on another thread).
pub fn aggregate_open_file(
    file: &std::fs::File,
    threads: usize,
    lenient: bool,
    cull: u8,
    filter: Filter,
    read_bytes: Option<&std::sync::atomic::AtomicU64>,
) -> Result<Aggregator> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::Ordering;
    let count = |n: std::io::Result<usize>| {
        if let (Ok(k), Some(c)) = (&n, read_bytes) {
            c.fetch_add(*k as u64, Ordering::Relaxed);
        }
        n
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::Parse(format!("cannot read page_owner text: {e}")))?;
    if meta.is_file() {
        aggregate_file(
            |off, buf| count(file.read_at(buf, off)),
            meta.len(),
            threads.max(1),
            lenient,
            cull,
            filter,
        )
    } else {
        aggregate_file(
            |_, buf| {
                let mut r = file;
                count(r.read(buf))
            },
            0,
            1,
            lenient,
            cull,
            filter,
        )
    }
}
