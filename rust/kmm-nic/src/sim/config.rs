//! A transmit run's configuration (`NicConfig`, validated once), its errors
//! and its report.

use super::*;

/// Most producer threads a run accepts (descriptors carry an 8-bit CPU id).
pub const MAX_PRODUCERS: u32 = 64;
/// Most packets per producer (descriptors carry a 40-bit sequence number).
pub const MAX_PACKETS: u64 = 1 << 40;
/// Most descriptors one packet may use (the model's MAX_SKB_FRAGS + 1).
pub const MAX_DESCS_PER_PACKET: u32 = 64;

/// A fault injected on purpose, to test that worker failures surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Producer 0 panics before its first packet.
    ProducerPanic,
    /// The consumer panics after its first batch.
    ConsumerPanic,
    /// The consumer stops draining (the run must end by its timeout).
    ConsumerHang,
}

impl Fault {
    /// Parse `producer_panic`, `consumer_panic` or `consumer_hang`.
    pub fn parse(name: &str) -> Option<Fault> {
        match name {
            "producer_panic" => Some(Fault::ProducerPanic),
            "consumer_panic" => Some(Fault::ConsumerPanic),
            "consumer_hang" => Some(Fault::ConsumerHang),
            _ => None,
        }
    }
}

/// Everything a run needs. Build with [`NicConfig::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq)]
pub struct NicConfig {
    /// Locking mode.
    pub mode: Mode,
    /// Driver behaviour.
    pub driver: Driver,
    /// Producer threads (simulated CPUs), 1..=[`MAX_PRODUCERS`].
    pub producers: u32,
    /// Packets each producer sends.
    pub packets: u64,
    /// Ring size in descriptors (power of two).
    pub ring: u64,
    /// Worst-case descriptors per packet; each packet uses 1..=this many.
    pub max_descs: u32,
    /// Stop the queue when free descriptors drop below this (default: `max_descs`).
    pub stop_thresh: u32,
    /// Wake the queue when free descriptors reach this (default: 2 x stop).
    pub wake_thresh: u32,
    /// Pause between the queue check and the ring reservation, ns.
    pub race_window_ns: u64,
    /// Descriptors the NIC fetches per DMA burst.
    pub tx_batch: u32,
    /// Packets the core hands the driver per qdisc bulk dequeue; all but the
    /// last carry `xmit_more` (honoured by [`Driver::ModernXmitMore`]).
    pub tx_bulk: u32,
    /// NAPI budget: packets one poll may complete (`NAPI_POLL_WEIGHT`, 64).
    pub napi_budget: u32,
    /// Interrupt moderation (`ethtool -C tx-frames`): the completion
    /// interrupt fires once this many packets are done...
    pub coalesce_frames: u32,
    /// ...or the oldest done packet has waited this long (`tx-usecs`), us.
    pub coalesce_usecs: u64,
    /// BQL `slack_hold_time`, ms (the kernel's default is one second).
    pub bql_hold_ms: u64,
    /// NIC speed limit in descriptors per second; 0 = unlimited.
    pub tx_rate: u64,
    /// How long a stopped queue with free space and an idle completion path
    /// may stay stopped before the watchdog calls it a lost wakeup, ms.
    pub watchdog_ms: u64,
    /// The whole run is torn down with an error after this long, ms.
    pub timeout_ms: u64,
    /// Seed of the packet sizes.
    pub seed: u64,
    /// Deliberate failure, for tests.
    pub fault: Option<Fault>,
}

/// A configuration or run failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicError {
    /// A configuration that cannot work (raised before any thread starts).
    Config(String),
    /// A worker thread panicked, or the run timed out; the run was torn down.
    Worker(String),
}

impl NicError {
    /// The `kmm.errors` class this error maps to.
    pub fn class_name(&self) -> &'static str {
        match self {
            NicError::Config(_) => "NicError",
            NicError::Worker(_) => "NicWorkerError",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            NicError::Config(m) | NicError::Worker(m) => m,
        }
    }
}

impl std::fmt::Display for NicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for NicError {}

impl NicConfig {
    /// Defaults: 2 producers, 100 000 packets each, a 256-descriptor ring,
    /// packets of 1..=4 descriptors, stop below 4 free, wake at 8, no race
    /// window, DMA bursts of 16, qdisc bulks of 8, NAPI budget 64, completion
    /// interrupt after 16 packets or 8 us (half mlx5's tx-frames 32 /
    /// tx-usecs 16, for the small rings of the race), BQL hold time 1 s,
    /// unlimited NIC, watchdog 20 ms, timeout 120 s.
    pub fn new(mode: Mode, driver: Driver) -> Self {
        NicConfig {
            mode,
            driver,
            producers: 2,
            packets: 100_000,
            ring: 256,
            max_descs: 4,
            stop_thresh: 4,
            wake_thresh: 8,
            race_window_ns: 0,
            tx_batch: 16,
            tx_bulk: 8,
            napi_budget: 64,
            coalesce_frames: 16,
            coalesce_usecs: 8,
            bql_hold_ms: 1000,
            tx_rate: 0,
            watchdog_ms: 20,
            timeout_ms: 120_000,
            seed: 0,
            fault: None,
        }
    }

    /// Check every parameter; the error names the first bad one.
    pub fn validate(&self) -> Result<(), NicError> {
        let bad = |m: String| Err(NicError::Config(m));
        if self.producers == 0 || self.producers > MAX_PRODUCERS {
            return bad(format!(
                "producers must be between 1 and {MAX_PRODUCERS}, got {}",
                self.producers
            ));
        }
        if self.packets == 0 || self.packets > MAX_PACKETS {
            return bad(format!(
                "packets (per producer) must be between 1 and 2^40, got {}",
                self.packets
            ));
        }
        if self.max_descs == 0 || self.max_descs > MAX_DESCS_PER_PACKET {
            return bad(format!(
                "max_descs must be between 1 and {MAX_DESCS_PER_PACKET}, got {}",
                self.max_descs
            ));
        }
        if !(2..=crate::ring::MAX_RING as u64).contains(&self.ring) || !self.ring.is_power_of_two()
        {
            return bad(format!(
                "ring size {} must be a power of two between 2 and {}",
                self.ring,
                crate::ring::MAX_RING
            ));
        }
        if self.stop_thresh < self.max_descs {
            return bad(format!(
                "stop threshold {} is below the worst-case packet ({} descriptors): \
                 a running queue could not take the next packet",
                self.stop_thresh, self.max_descs
            ));
        }
        if self.wake_thresh < self.stop_thresh {
            return bad(format!(
                "wake threshold {} is below the stop threshold {}: the queue would be \
                 woken straight back into a stop",
                self.wake_thresh, self.stop_thresh
            ));
        }
        if self.ring < (self.stop_thresh + self.max_descs) as u64 {
            return bad(format!(
                "ring of {} descriptors is too small for a packet of {} descriptors \
                 above the stop threshold {} (needs at least {})",
                self.ring,
                self.max_descs,
                self.stop_thresh,
                self.stop_thresh + self.max_descs
            ));
        }
        if self.wake_thresh as u64 > self.ring {
            return bad(format!(
                "wake threshold {} exceeds the ring size {}: the queue could never wake",
                self.wake_thresh, self.ring
            ));
        }
        if self.tx_batch == 0 || self.tx_batch > 4096 {
            return bad(format!(
                "tx_batch must be between 1 and 4096, got {}",
                self.tx_batch
            ));
        }
        for (name, v) in [
            ("tx_bulk", self.tx_bulk),
            ("napi_budget", self.napi_budget),
            ("coalesce_frames", self.coalesce_frames),
        ] {
            if v == 0 || v > 65_536 {
                return bad(format!("{name} must be between 1 and 65536, got {v}"));
            }
        }
        if self.coalesce_usecs > 1_000_000 {
            return bad(format!(
                "coalesce_usecs must be at most 1 000 000 (1 s), got {}",
                self.coalesce_usecs
            ));
        }
        if self.bql_hold_ms > 60_000 {
            return bad(format!(
                "bql_hold_ms must be at most 60000, got {}",
                self.bql_hold_ms
            ));
        }
        if self.race_window_ns > 10_000_000 {
            return bad(format!(
                "race_window_ns must be at most 10 000 000 (10 ms), got {}",
                self.race_window_ns
            ));
        }
        if self.watchdog_ms == 0 || self.watchdog_ms > 60_000 {
            return bad(format!(
                "watchdog_ms must be between 1 and 60000, got {}",
                self.watchdog_ms
            ));
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms must be positive".into());
        }
        // the exactly-once check keeps a bit per packet: at most 2 GiB of them
        if (self.producers as u64).saturating_mul(self.packets) > MAX_RUN_PACKETS {
            return bad(format!(
                "producers x packets must be at most 2^34 (the exactly-once check keeps a bit per packet), got {} x {}",
                self.producers, self.packets
            ));
        }
        Ok(())
    }
}

/// The outcome of a run: every counter, the verification, the throughput.
#[derive(Debug, Clone, PartialEq)]
pub struct NicReport {
    /// Packets all producers were asked to send (`producers * packets`).
    pub expected: u64,
    /// Summed producer counters.
    pub xmit: XmitStats,
    /// Distinct packets the NIC completed (each counted once).
    pub delivered: u64,
    /// Packets never delivered (`expected - delivered`).
    pub dropped: u64,
    /// Packets the NIC saw more than once.
    pub duplicates: u64,
    /// Packets out of per-producer order.
    pub order_violations: u64,
    /// Packets whose descriptors were not contiguous and in order, or carried
    /// an impossible producer id.
    pub torn_packets: u64,
    /// Descriptors the NIC processed.
    pub descriptors: u64,
    /// Wakes by the completion path.
    pub wakes: u64,
    /// Lost wakeups the watchdog caught (it then woke the queue, as tx_timeout).
    pub lost_wakeups: u64,
    /// Completion interrupts raised (after moderation).
    pub interrupts: u64,
    /// Completions: NAPI polls that reclaimed packets.
    pub completions: u64,
    /// Completion latency, from `dev_queue_xmit` to the NAPI poll that
    /// reclaimed the packet: the median, 99th and 99.9th percentiles, ns.
    pub latency_ns_p50: u64,
    /// See [`NicReport::latency_ns_p50`].
    pub latency_ns_p99: u64,
    /// See [`NicReport::latency_ns_p50`].
    pub latency_ns_p999: u64,
    /// BQL drivers: (seconds since the start, limit in bytes) at the start
    /// and at every change of the limit (thinned to at most
    /// [`BQL_SAMPLES`] points).
    pub bql_limit: Vec<(f64, u32)>,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Delivered packets per second.
    pub pps: f64,
}

/// Most points [`NicReport::bql_limit`] keeps.
pub const BQL_SAMPLES: usize = 4096;

impl NicReport {
    /// Doorbell writes per packet sent (1.0 without `xmit_more`).
    pub fn doorbells_per_packet(&self) -> f64 {
        if self.xmit.sent == 0 {
            0.0
        } else {
            self.xmit.doorbells as f64 / self.xmit.sent as f64
        }
    }

    /// Exactly once, in order, nothing dropped, nothing torn.
    pub fn verified(&self) -> bool {
        self.delivered == self.expected
            && self.xmit.sent == self.expected
            && self.dropped == 0
            && self.duplicates == 0
            && self.order_violations == 0
            && self.torn_packets == 0
    }
}
