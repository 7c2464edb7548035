//! Byte queue limits: the dynamic queue limit of `lib/dynamic_queue_limits.c`.
//!
//! Per transmit queue, the driver reports bytes handed to the hardware
//! ([`Dql::queued`], `dql_queued`) and bytes the hardware completed
//! ([`Dql::completed`], `dql_completed`). The limit on bytes in flight adapts
//! at each completion (Tom Herbert's BQL, Linux 3.3; `dql_completed`):
//!
//! * it **grows** when the queue starved: it was over the limit and the
//!   hardware has now run dry, or it was over the limit in the previous
//!   interval and everything queued then has completed. It grows by the bytes
//!   both queued and completed since the previous completion, plus the
//!   previous interval's excess over the limit;
//! * it **shrinks** by the lowest slack (bytes queued beyond what kept the
//!   hardware busy) seen over `slack_hold_time`, if the queue stayed busy;
//! * it is clamped to `[min_limit, max_limit]`.
//!
//! [`Dql::avail`] below zero is what sets `__QUEUE_STATE_STACK_XOFF`.
//!
//! The producer side (`num_queued`, `last_obj_cnt`) and the limit the
//! producers compare against (`adj_limit`) are shared atomics; the rest is
//! written only by the single completion path and is atomic only so that the
//! queue can be shared. Counters are free-running `u32`s, compared by
//! wrapping difference as the kernel does.

use crate::sync::{AtomicU32, AtomicU64, CachePadded, Ordering};

/// `DQL_MAX_LIMIT`: the largest limit (and the default `max_limit`).
pub const DQL_MAX_LIMIT: u32 = (u32::MAX / 2) - (u32::MAX / 16);

/// `a - b` if positive, else 0 (the kernel's `POSDIFF`).
#[inline]
fn posdiff(a: u32, b: u32) -> u32 {
    let d = a.wrapping_sub(b);
    if (d as i32) > 0 {
        d
    } else {
        0
    }
}

/// One queue's dynamic limit.
#[derive(Debug)]
pub struct Dql {
    /// Producer side: bytes ever queued, and the size of the last queuing.
    num_queued: CachePadded<AtomicU32>,
    last_obj_cnt: AtomicU32,
    /// `limit + num_completed`: producers may queue up to here.
    adj_limit: CachePadded<AtomicU32>,
    limit: AtomicU32,
    num_completed: AtomicU32,
    prev_ovlimit: AtomicU32,
    prev_num_queued: AtomicU32,
    prev_last_obj_cnt: AtomicU32,
    lowest_slack: AtomicU32,
    slack_start_ns: AtomicU64,
    min_limit: u32,
    max_limit: u32,
    slack_hold_ns: u64,
}

impl Dql {
    /// `dql_init`: limit `min_limit`, bounded by `[min_limit, max_limit]`,
    /// shrinking at most once per `slack_hold_ns`.
    pub fn new(min_limit: u32, max_limit: u32, slack_hold_ns: u64) -> Self {
        Dql {
            num_queued: CachePadded(AtomicU32::new(0)),
            last_obj_cnt: AtomicU32::new(0),
            adj_limit: CachePadded(AtomicU32::new(min_limit)),
            limit: AtomicU32::new(min_limit),
            num_completed: AtomicU32::new(0),
            prev_ovlimit: AtomicU32::new(0),
            prev_num_queued: AtomicU32::new(0),
            prev_last_obj_cnt: AtomicU32::new(0),
            lowest_slack: AtomicU32::new(u32::MAX),
            slack_start_ns: AtomicU64::new(0),
            min_limit,
            max_limit: max_limit.max(min_limit),
            slack_hold_ns,
        }
    }

    /// `dql_queued`: `bytes` were handed to the hardware.
    #[inline]
    pub fn queued(&self, bytes: u32) {
        self.last_obj_cnt.store(bytes, Ordering::Relaxed);
        self.num_queued.fetch_add(bytes, Ordering::Release);
    }

    /// `dql_avail`: bytes that may still be queued (negative: over the limit).
    #[inline]
    pub fn avail(&self) -> i32 {
        let adj = self.adj_limit.load(Ordering::Acquire);
        adj.wrapping_sub(self.num_queued.load(Ordering::Acquire)) as i32
    }

    /// The current limit in bytes.
    #[inline]
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Bytes queued and not yet completed.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.num_queued
            .load(Ordering::Acquire)
            .wrapping_sub(self.num_completed.load(Ordering::Relaxed))
    }

    /// `dql_completed`: the hardware finished `bytes` more, at time `now_ns`.
    /// Called by the single completion path only.
    pub fn completed(&self, bytes: u32, now_ns: u64) {
        let r = Ordering::Relaxed;
        let num_queued = self.num_queued.load(Ordering::Acquire);
        let num_completed = self.num_completed.load(r);
        let prev_num_queued = self.prev_num_queued.load(r);
        let prev_ovlimit = self.prev_ovlimit.load(r);
        debug_assert!(
            bytes <= num_queued.wrapping_sub(num_completed),
            "completed more bytes than were queued"
        );
        let completed = num_completed.wrapping_add(bytes);
        let mut limit = self.limit.load(r);
        let mut ovlimit = posdiff(num_queued.wrapping_sub(num_completed), limit);
        let inprogress = num_queued.wrapping_sub(completed);
        let prev_inprogress = prev_num_queued.wrapping_sub(num_completed);
        let all_prev_completed = (completed.wrapping_sub(prev_num_queued) as i32) >= 0;

        if (ovlimit != 0 && inprogress == 0) || (prev_ovlimit != 0 && all_prev_completed) {
            // Starved: the limit kept the hardware waiting. Grow by what went
            // through since the last completion, plus the last excess.
            limit = limit
                .saturating_add(posdiff(completed, prev_num_queued))
                .saturating_add(prev_ovlimit);
            self.slack_start_ns.store(now_ns, r);
            self.lowest_slack.store(u32::MAX, r);
        } else if inprogress != 0 && prev_inprogress != 0 && !all_prev_completed {
            // Busy the whole interval: the slack is what was queued beyond
            // twice what completed, or the part of the last queuing that was
            // not over the limit.
            let slack = posdiff(
                limit.wrapping_add(prev_ovlimit),
                completed.wrapping_sub(num_completed).wrapping_mul(2),
            );
            let last_objs = if prev_ovlimit != 0 {
                posdiff(self.prev_last_obj_cnt.load(r), prev_ovlimit)
            } else {
                0
            };
            let slack = slack.max(last_objs);
            if slack < self.lowest_slack.load(r) {
                self.lowest_slack.store(slack, r);
            }
            if now_ns.saturating_sub(self.slack_start_ns.load(r)) > self.slack_hold_ns {
                limit = posdiff(limit, self.lowest_slack.load(r));
                self.slack_start_ns.store(now_ns, r);
                self.lowest_slack.store(u32::MAX, r);
            }
        }

        let limit = limit.clamp(self.min_limit, self.max_limit);
        if limit != self.limit.load(r) {
            self.limit.store(limit, r);
            ovlimit = 0;
        }
        self.adj_limit
            .store(limit.wrapping_add(completed), Ordering::Release);
        self.prev_ovlimit.store(ovlimit, r);
        self.prev_last_obj_cnt.store(self.last_obj_cnt.load(r), r);
        self.num_completed.store(completed, r);
        self.prev_num_queued.store(num_queued, r);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_starved_queue_grows_its_limit() {
        let d = Dql::new(0, DQL_MAX_LIMIT, 1_000_000_000);
        assert_eq!(d.avail(), 0);
        d.queued(1500);
        assert!(d.avail() < 0, "over the limit of 0");
        d.completed(1500, 1);
        // over the limit with nothing left in flight: starved
        assert_eq!(d.limit(), 1500);
        assert_eq!(d.avail(), 1500);
        assert_eq!(d.in_flight(), 0);
    }

    #[test]
    fn a_busy_queue_sheds_its_slack_after_the_hold_time() {
        let d = Dql::new(0, DQL_MAX_LIMIT, 1000);
        // grow to a large limit
        d.queued(100_000);
        d.completed(100_000, 0);
        let big = d.limit();
        assert!(big >= 100_000);
        // then keep the queue busy with small completions: the slack is large
        let mut t = 0;
        for _ in 0..10 {
            d.queued(3000);
            d.queued(3000);
            t += 600;
            d.completed(3000, t);
        }
        assert!(
            d.limit() < big,
            "limit {} did not shrink from {big}",
            d.limit()
        );
    }

    #[test]
    fn the_limit_is_clamped() {
        let d = Dql::new(2000, 4000, 1_000_000_000);
        assert_eq!(d.limit(), 2000);
        d.queued(50_000);
        d.completed(50_000, 0);
        assert_eq!(d.limit(), 4000);
    }
}
