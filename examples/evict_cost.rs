//! Eviction cost in process, without the network: CPU time per SET of a 100-byte value over
//! 1,000,000 random keys `key:%08d` on a 4-shard engine, with no limit and with allkeys-lru at
//! 40 MB above the empty engine (so nearly every SET evicts a key), five times each, medians.
//! Thread CPU time, so a loaded machine disturbs it less than `benches/memory.py cost`.
//!
//! `cargo run --release --example evict_cost`

use cachette::engine::evict::{Policy, Settings};
use cachette::engine::{memory, Engine};
use cachette::types::Value;

fn cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a pointer to a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// ns of CPU per SET after a warm-up, and keys evicted.
fn run(limit: bool, seed: u64) -> (f64, u64) {
    let e = Engine::new(4);
    let base = memory::used() as u64;
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let v = vec![b'v'; 100];
    let now = 1_763_000_000_000u64;
    let set = |e: &Engine, i: u64| {
        let key = format!("key:{:08}", i % 1_000_000);
        let _ = e.make_room(now);
        let k = e.hashed(key.as_bytes());
        e.lock_one(&k).set(0, &k, Value::Str(v.clone()), None, 0, false, now);
    };
    if limit {
        e.limits.configure(Settings {
            maxmemory: base + (40 << 20),
            policy: Policy::AllkeysLru,
            samples: 5,
            tenacity: 10,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        });
    }
    for _ in 0..600_000 {
        set(&e, rnd());
    }
    let t0 = cpu_ns();
    let n = 600_000;
    for _ in 0..n {
        set(&e, rnd());
    }
    let t = cpu_ns() - t0;
    let ev = e.limits.evicted_keys.load(std::sync::atomic::Ordering::Relaxed);
    (t as f64 / n as f64, ev)
}

fn main() {
    let mut un = Vec::new();
    let mut li = Vec::new();
    for r in 0..5 {
        un.push(run(false, 7 + r).0);
        let (t, ev) = run(true, 7 + r);
        li.push(t);
        eprintln!("rep {r}: unlimited {:.0} ns/set, limited {:.0} ns/set ({ev} evicted)", un[r as usize], t);
    }
    un.sort_by(f64::total_cmp);
    li.sort_by(f64::total_cmp);
    println!(
        "median: unlimited {:.0} ns/set, limited {:.0} ns/set, throughput ratio {:.2}",
        un[2],
        li[2],
        un[2] / li[2]
    );
}
