//! A transmit run on real threads: one producer thread per simulated CPU
//! (`dev_queue_xmit` with a numbered packet stream, handed to the driver in
//! qdisc bulks with `xmit_more`), one consumer thread (the NIC: fetches
//! descriptors up to the doorbell at a configurable rate, verifies them, and
//! raises a moderated completion interrupt whose NAPI poll reclaims at most a
//! budget of packets per round), and the calling thread as `dev_watchdog` and
//! overall timeout.

use crate::latency::Histogram;
use crate::queue::{Driver, Mode, TxQueue, Xmit, XmitStats};
use crate::sync::{spin_wait, AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod config;
pub use config::*;

/// Descriptor word: producer (8 bits) | sequence (40) | fragment (8) | fragments (8).
#[inline]
pub fn encode_desc(producer: u32, seq: u64, frag: u32, nfrags: u32) -> u64 {
    ((producer as u64) << 56) | (seq << 16) | ((frag as u64) << 8) | nfrags as u64
}

/// Inverse of [`encode_desc`]: (producer, seq, frag, nfrags).
#[inline]
pub fn decode_desc(d: u64) -> (u32, u64, u32, u32) {
    (
        (d >> 56) as u32,
        (d >> 16) & (MAX_PACKETS - 1),
        ((d >> 8) & 0xff) as u32,
        (d & 0xff) as u32,
    )
}

/// Descriptors of packet `seq` of `producer`: 1..=max_descs, a pure function
/// of (seed, producer, seq), so a seed fixes every packet's size.
#[inline]
pub fn packet_descs(seed: u64, producer: u32, seq: u64, max_descs: u32) -> u32 {
    // splitmix64
    let mut z = seed
        .wrapping_add((producer as u64) << 48)
        .wrapping_add(seq)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    1 + (z % max_descs as u64) as u32
}

/// Length in bytes of packet `seq` of `producer` (64..=1514, a frame
/// without its FCS), a pure function of (seed, producer, seq) like its
/// descriptor count.
#[inline]
pub fn packet_bytes(seed: u64, producer: u32, seq: u64) -> u32 {
    64 + (packet_descs(seed ^ 0x5bd1_e995, producer, seq, 1451) - 1)
}

/// The NIC's receive-side bookkeeping for one producer's stream.
struct StreamCheck {
    next_seq: u64,
    /// (seq, next fragment expected, fragments) of a packet being received.
    partial: Option<(u64, u32, u32)>,
    seen: Vec<u64>,
}

#[derive(Default)]
struct Verify {
    delivered: u64,
    duplicates: u64,
    order_violations: u64,
    torn: u64,
    descriptors: u64,
}

impl Verify {
    /// Check one descriptor; returns (producer, seq) when it ends a packet.
    fn check(&mut self, streams: &mut [StreamCheck], d: u64, packets: u64) -> Option<(u32, u64)> {
        self.descriptors += 1;
        let (p, seq, frag, nfrags) = decode_desc(d);
        let Some(s) = streams.get_mut(p as usize) else {
            self.torn += 1;
            return None;
        };
        if seq >= packets || nfrags == 0 || frag >= nfrags {
            self.torn += 1;
            return None;
        }
        match s.partial {
            Some((pseq, pfrag, pn)) if pseq == seq && pfrag == frag && pn == nfrags => {}
            Some(_) => {
                self.torn += 1;
                s.partial = None;
                if frag != 0 {
                    return None;
                }
            }
            None if frag != 0 => {
                self.torn += 1;
                return None;
            }
            None => {}
        }
        if frag + 1 < nfrags {
            s.partial = Some((seq, frag + 1, nfrags));
            return None;
        }
        s.partial = None;
        // last fragment: the packet is complete
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if s.seen[w] & (1 << b) != 0 {
            self.duplicates += 1;
            return Some((p, seq));
        }
        s.seen[w] |= 1 << b;
        self.delivered += 1;
        if seq != s.next_seq {
            self.order_violations += 1;
        }
        s.next_seq = seq + 1;
        Some((p, seq))
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Shared run state besides the queue.
struct Shared {
    abort: AtomicBool,
    producers_done: AtomicU32,
    failure: Mutex<Option<String>>,
    completions: AtomicU64,
    consumer_done: AtomicBool,
    /// Per producer: when each in-flight packet entered `dev_queue_xmit`
    /// (ns since the start), indexed by `seq & enqueue_mask`.
    enqueued_ns: Vec<Box<[AtomicU64]>>,
    enqueue_mask: u64,
    start: Instant,
}

impl Shared {
    fn fail(&self, who: &str, what: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(format!("{who}: {what}"));
        }
        self.abort.store(true, Ordering::Release);
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// What the NIC hands back besides the verification.
#[derive(Default)]
struct NicSide {
    verify: Verify,
    latency: Histogram,
    wakes: u64,
    interrupts: u64,
    bql_limit: Vec<(f64, u32)>,
}

/// Run a transmit experiment on real threads and verify it.
///
/// Validates `cfg` before any thread starts ([`NicError::Config`]). A worker
/// panic or the timeout tears the run down and returns [`NicError::Worker`];
/// no thread is left behind.
/// Most packets one run sends, all producers together (a 2 GiB bitmap).
pub const MAX_RUN_PACKETS: u64 = 1 << 34;

pub fn run(cfg: &NicConfig) -> Result<NicReport, NicError> {
    run_polled(cfg, &|| false)
}

/// [`run`], asking `interrupted` (on the calling thread, about every
/// millisecond) whether to stop: when it says so the run is torn down as on a
/// timeout and returns `NicError::Worker` ("interrupted").
pub fn run_polled(cfg: &NicConfig, interrupted: &dyn Fn() -> bool) -> Result<NicReport, NicError> {
    cfg.validate()?;
    let q = TxQueue::new(
        cfg.ring,
        cfg.mode,
        cfg.driver,
        cfg.stop_thresh,
        cfg.wake_thresh,
        cfg.race_window_ns,
    )
    .map_err(|e| NicError::Config(e.to_string()))?
    .with_bql_slack_hold(cfg.bql_hold_ms * 1_000_000);
    // A producer has at most `ring` packets between its enqueue and their
    // reclaim, and stamps a packet before offering it: twice the ring keeps
    // every stamp until the NIC has read it.
    let slots = (2 * cfg.ring).next_power_of_two();
    let sh = Shared {
        abort: AtomicBool::new(false),
        producers_done: AtomicU32::new(0),
        failure: Mutex::new(None),
        completions: AtomicU64::new(0),
        consumer_done: AtomicBool::new(false),
        enqueued_ns: (0..cfg.producers)
            .map(|_| (0..slots).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        enqueue_mask: slots - 1,
        start: Instant::now(),
    };
    let stats: Vec<Mutex<XmitStats>> = (0..cfg.producers)
        .map(|_| Mutex::new(XmitStats::default()))
        .collect();
    let nic: Mutex<NicSide> = Mutex::new(NicSide::default());
    let mut lost_wakeups = 0u64;

    std::thread::scope(|s| {
        for p in 0..cfg.producers {
            let (q, sh, stats) = (&q, &sh, &stats);
            s.spawn(move || {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let st = producer(q, sh, cfg, p);
                    *stats[p as usize].lock().unwrap_or_else(|e| e.into_inner()) = st;
                }));
                if let Err(e) = r {
                    sh.fail(&format!("producer {p} panicked"), panic_text(e));
                }
                sh.producers_done.fetch_add(1, Ordering::AcqRel);
            });
        }
        {
            let (q, sh, nic) = (&q, &sh, &nic);
            s.spawn(move || {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let v = consumer(q, sh, cfg);
                    *nic.lock().unwrap_or_else(|e| e.into_inner()) = v;
                }));
                if let Err(e) = r {
                    sh.fail("the NIC (consumer) panicked", panic_text(e));
                }
                sh.consumer_done.store(true, Ordering::Release);
            });
        }
        lost_wakeups = watchdog(&q, &sh, cfg, interrupted);
    });
    let elapsed = sh.start.elapsed().as_secs_f64();

    if let Some(f) = sh.failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(NicError::Worker(format!(
            "{f} (mode {}, driver {}); the run was torn down",
            cfg.mode.name(),
            cfg.driver.name()
        )));
    }
    let mut xmit = XmitStats::default();
    for st in &stats {
        xmit.add(&st.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let nic = nic.into_inner().unwrap_or_else(|e| e.into_inner());
    let v = &nic.verify;
    let expected = cfg.producers as u64 * cfg.packets;
    Ok(NicReport {
        expected,
        xmit,
        delivered: v.delivered,
        dropped: expected - v.delivered.min(expected),
        duplicates: v.duplicates,
        order_violations: v.order_violations,
        torn_packets: v.torn,
        descriptors: v.descriptors,
        wakes: nic.wakes,
        lost_wakeups,
        interrupts: nic.interrupts,
        completions: sh.completions.load(Ordering::Relaxed),
        latency_ns_p50: nic.latency.quantile(0.5),
        latency_ns_p99: nic.latency.quantile(0.99),
        latency_ns_p999: nic.latency.quantile(0.999),
        bql_limit: nic.bql_limit,
        elapsed_s: elapsed,
        pps: if elapsed > 0.0 {
            v.delivered as f64 / elapsed
        } else {
            0.0
        },
    })
}

/// One CPU's `dev_queue_xmit` loop: send packets 0..packets in order, in
/// qdisc bulks of `tx_bulk` (all but the last with `xmit_more`); a packet
/// not taken is retried (requeued, never dropped) once the queue runs.
fn producer(q: &TxQueue, sh: &Shared, cfg: &NicConfig, p: u32) -> XmitStats {
    if cfg.fault == Some(Fault::ProducerPanic) && p == 0 {
        panic!("injected producer fault");
    }
    let mut cpu = q.cpu();
    let stamps = &sh.enqueued_ns[p as usize];
    let mut descs = [0u64; MAX_DESCS_PER_PACKET as usize];
    for seq in 0..cfg.packets {
        let n = packet_descs(cfg.seed, p, seq, cfg.max_descs);
        for f in 0..n {
            descs[f as usize] = encode_desc(p, seq, f, n);
        }
        let bytes = packet_bytes(cfg.seed, p, seq);
        // Published to the NIC by the ring's Release on the descriptor.
        stamps[(seq & sh.enqueue_mask) as usize].store(sh.now_ns(), Ordering::Relaxed);
        let more = (seq + 1) % cfg.tx_bulk as u64 != 0 && seq + 1 < cfg.packets;
        let mut spins = 0u32;
        loop {
            match q.xmit(&mut cpu, &descs[..n as usize], bytes, more) {
                Xmit::Sent => break,
                Xmit::QueueStopped | Xmit::Requeued => {
                    if sh.aborted() {
                        return cpu.stats;
                    }
                    spin_wait(&mut spins);
                }
            }
        }
        if seq % 1024 == 0 && sh.aborted() {
            return cpu.stats;
        }
    }
    cpu.stats
}

/// A packet the hardware has sent and NAPI has not yet reclaimed.
struct Done {
    /// Ring position just past its last descriptor.
    end: u32,
    bytes: u32,
    enqueued_ns: u64,
}

/// The NIC: DMA up to `tx_batch` descriptors before the doorbell, verify
/// them, honour the rate limit; raise the completion interrupt once
/// `coalesce_frames` packets are done or the oldest has waited
/// `coalesce_usecs`; its NAPI poll completes at most `napi_budget` packets a
/// round (reclaim, BQL, maybe wake) and polls again while the budget is used
/// up. Ends when every producer is done and the ring is drained.
fn consumer(q: &TxQueue, sh: &Shared, cfg: &NicConfig) -> NicSide {
    let mut cons = q.ring.consumer().expect("the NIC is the only consumer");
    let words = (cfg.packets as usize).div_ceil(64);
    let mut streams: Vec<StreamCheck> = (0..cfg.producers)
        .map(|_| StreamCheck {
            next_seq: 0,
            partial: None,
            seen: vec![0; words],
        })
        .collect();
    let mut out = NicSide::default();
    if let Some(dql) = q.bql() {
        out.bql_limit.push((0.0, dql.limit()));
    }
    let mut buf = vec![0u64; cfg.tx_batch as usize];
    let mut done: VecDeque<Done> = VecDeque::new();
    // When the oldest packet in `done` was sent (the moderation timer).
    let mut oldest_done_ns = 0u64;
    let moderation_ns = cfg.coalesce_usecs * 1000;
    let mut spins = 0u32;
    loop {
        if sh.aborted() {
            break;
        }
        if cfg.fault == Some(Fault::ConsumerHang) && out.verify.descriptors > 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        // Read "done" before fetching: an empty fetch after it means drained.
        let producers_done = sh.producers_done.load(Ordering::Acquire) == cfg.producers;
        let first = cons.fetched();
        let was_idle = done.is_empty();
        let n = cons.fetch_until(q.doorbell(), &mut buf);
        for (i, &d) in buf[..n].iter().enumerate() {
            if let Some((p, seq)) = out.verify.check(&mut streams, d, cfg.packets) {
                let stamp = &sh.enqueued_ns[p as usize][(seq & sh.enqueue_mask) as usize];
                done.push_back(Done {
                    end: first.wrapping_add(i as u32 + 1),
                    bytes: packet_bytes(cfg.seed, p, seq),
                    enqueued_ns: stamp.load(Ordering::Relaxed),
                });
            }
        }
        if n > 0 && cfg.tx_rate > 0 {
            // The wire: descriptor k may complete no earlier than k / rate.
            let due = Duration::from_secs_f64(out.verify.descriptors as f64 / cfg.tx_rate as f64);
            while sh.start.elapsed() < due && !sh.aborted() {
                std::hint::spin_loop();
            }
        }
        if n > 0 && cfg.fault == Some(Fault::ConsumerPanic) {
            panic!("injected NIC fault");
        }
        let now = sh.now_ns();
        if was_idle && !done.is_empty() {
            oldest_done_ns = now;
        }
        let irq = !done.is_empty()
            && (done.len() >= cfg.coalesce_frames as usize
                || now.saturating_sub(oldest_done_ns) >= moderation_ns);
        if irq {
            out.interrupts += 1;
            napi_poll(q, sh, cfg, &mut cons, &mut done, &mut out);
        } else if n == 0 {
            if producers_done && done.is_empty() {
                break;
            }
            spin_wait(&mut spins);
        }
    }
    out
}

/// The driver's NAPI poll for transmit completions: rounds of at most
/// `napi_budget` packets, each reclaiming its descriptors and calling the
/// completion-side wake ([`TxQueue::tx_complete`]), until a round completes
/// less than the budget (`napi_complete_done`).
fn napi_poll(
    q: &TxQueue,
    sh: &Shared,
    cfg: &NicConfig,
    cons: &mut crate::ring::Consumer<'_>,
    done: &mut VecDeque<Done>,
    out: &mut NicSide,
) {
    loop {
        let k = done.len().min(cfg.napi_budget as usize);
        if k == 0 {
            return;
        }
        let now = sh.now_ns();
        let (mut bytes, mut end) = (0u32, 0u32);
        for d in done.drain(..k) {
            out.latency.record(now.saturating_sub(d.enqueued_ns));
            bytes += d.bytes;
            end = d.end;
        }
        if q.tx_complete(cons, end, k as u32, bytes, now) {
            out.wakes += 1;
        }
        sh.completions.fetch_add(1, Ordering::Relaxed);
        if let Some(dql) = q.bql() {
            let limit = dql.limit();
            if out.bql_limit.last().map(|&(_, l)| l) != Some(limit) {
                if out.bql_limit.len() >= BQL_SAMPLES {
                    // thin to every other point, keeping the first
                    let mut i = 0;
                    out.bql_limit.retain(|_| {
                        i += 1;
                        i % 2 == 1
                    });
                }
                out.bql_limit.push((now as f64 / 1e9, limit));
            }
        }
        if k < cfg.napi_budget as usize {
            return;
        }
    }
}

/// `dev_watchdog` on the calling thread: a stopped queue whose wake
/// condition holds ([`TxQueue::wake_overdue`]) while the completion path
/// makes no progress for `watchdog_ms` is a lost wakeup; count it and wake
/// the queue (`tx_timeout`). Also enforces the overall timeout. Returns the
/// lost wakeups seen.
fn watchdog(q: &TxQueue, sh: &Shared, cfg: &NicConfig, interrupted: &dyn Fn() -> bool) -> u64 {
    let limit = Duration::from_millis(cfg.watchdog_ms);
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let poll = Duration::from_micros((cfg.watchdog_ms * 1000 / 8).clamp(50, 1000));
    let mut lost = 0;
    let mut suspect: Option<(Instant, u64)> = None;
    loop {
        let producers_done = sh.producers_done.load(Ordering::Acquire) == cfg.producers;
        if producers_done || sh.aborted() {
            // The consumer only drains from here on; it ends by itself.
            if producers_done {
                // but a hung consumer must still be bounded by the timeout
                while !sh.aborted() && sh.start.elapsed() < timeout && !consumer_finished(sh) {
                    if interrupted() {
                        sh.fail("interrupted", "the caller asked the run to stop".into());
                    }
                    std::thread::sleep(poll);
                }
                if !sh.aborted() && !consumer_finished(sh) {
                    sh.fail(
                        "timed out",
                        format!("the NIC did not drain within {} ms", cfg.timeout_ms),
                    );
                }
            }
            return lost;
        }
        if interrupted() {
            sh.fail("interrupted", "the caller asked the run to stop".into());
            return lost;
        }
        if sh.start.elapsed() >= timeout {
            sh.fail(
                "timed out",
                format!("the run did not finish within {} ms", cfg.timeout_ms),
            );
            return lost;
        }
        if q.wake_overdue() {
            let progress = sh.completions.load(Ordering::Relaxed);
            match suspect {
                Some((since, seen)) if seen == progress => {
                    if since.elapsed() >= limit {
                        lost += 1;
                        q.tx_timeout();
                        suspect = None;
                    }
                }
                _ => suspect = Some((Instant::now(), progress)),
            }
        } else {
            suspect = None;
        }
        std::thread::sleep(poll);
    }
}

fn consumer_finished(sh: &Shared) -> bool {
    sh.consumer_done.load(Ordering::Acquire)
}
