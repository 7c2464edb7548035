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
            println!(
                "{:17} {:17} ok={} pps={:>10.0} req={} busy={} spur={} real={} harmless={} stops={} wakes={} restarts={} coll={} fas={} stalls={}",
                m.name(), d.name(), r.verified(), r.pps, r.xmit.requeued, r.xmit.busy,
                r.xmit.spurious_bug_logs, r.xmit.real_bug_logs, r.xmit.harmless_races,
                r.xmit.stops, r.wakes, r.xmit.restarts, r.xmit.collisions, r.xmit.full_at_start, r.stalls
            );
        }
    }
}
