//! Print one line of counters per mode x driver (a quick look at the race).
//! `cargo run --release -p kmm-nic --example matrix -- [packets] [ring] [race_window_ns] [producers]`
use kmm_nic::{run, Driver, Mode, NicConfig};

fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    for m in Mode::ALL {
        for d in Driver::ALL {
            let mut c = NicConfig::new(m, d);
            c.packets = *a.first().unwrap_or(&200_000);
            c.ring = *a.get(1).unwrap_or(&256);
            c.race_window_ns = *a.get(2).unwrap_or(&0);
            c.producers = *a.get(3).unwrap_or(&2) as u32;
            let r = run(&c).unwrap();
            let x = &r.xmit;
            println!(
                "{:17} {:17} ok={} pps={:>10.0} p50={} p99={} req={} busy={} spur={} real={} \
                 harmless={} stops={} wakes={} restarts={} coll={} false_wakes={} races={} \
                 bell/pkt={:.2} lost={}",
                m.name(),
                d.name(),
                r.verified(),
                r.pps,
                r.latency_ns_p50,
                r.latency_ns_p99,
                x.requeues,
                x.busy,
                x.spurious_bug_logs,
                x.real_bug_logs,
                x.harmless_races,
                x.stops,
                r.wakes,
                x.restarts,
                x.collisions,
                x.false_wakes,
                x.stopper_races,
                r.doorbells_per_packet(),
                r.lost_wakeups
            );
        }
    }
}
