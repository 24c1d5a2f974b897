//! The network side: listeners, worker threads, connections, the cron, and shutdown.
//!
//! `run` binds every listener once up front (so a bad address or a taken port fails start-up
//! with a message), then starts `threads` workers, each with its own SO_REUSEPORT sockets for
//! every protocol and address, and turns the calling thread into the cron: it runs the active
//! expiry cycle `hz` times a second and watches for SIGINT/SIGTERM. On a signal it sets the
//! shutdown flag, wakes every worker, and waits for them to flush their replies and exit.

pub mod blocking;
pub mod conn;
pub mod listener;
pub mod log;
pub mod monitor;
pub mod notify;
pub mod pubsub;
pub mod shared;
pub mod stats;
pub mod tracking;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, LogLevel};
pub use shared::{unix_ms, ClientInfo, Shared};

use conn::Proto;

/// Set from the signal handler; an atomic store is async-signal-safe.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe; SIGPIPE is
    // ignored so a write to a closed socket returns EPIPE instead of killing the process.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Binds the listeners of one worker: every bind address for each enabled protocol.
fn bind_all(cfg: &Config, resp_port: u16, mc_port: u16) -> Result<Vec<(std::net::TcpListener, Proto)>, String> {
    let mut out = Vec::new();
    for (port, proto) in [(resp_port, Proto::Resp), (mc_port, Proto::Memcache)] {
        if port == 0 {
            continue;
        }
        for addr in &cfg.bind {
            let optional = addr.starts_with('-');
            let resolved =
                listener::resolve(addr, port).map_err(|e| format!("cannot resolve bind address {addr}: {e}"))?;
            for sa in resolved {
                match listener::bind_reuseport(sa, cfg.tcp_backlog) {
                    Ok(l) => out.push((l, proto)),
                    Err(_) if optional => {}
                    Err(e) => return Err(format!("could not listen on {sa}: {e}")),
                }
            }
        }
    }
    Ok(out)
}

/// Binds the metrics endpoint. A failure is logged and the server runs without it: metrics are
/// worth less than serving clients.
fn bind_metrics(cfg: &Config) -> Option<std::net::TcpListener> {
    if cfg.metrics_port == 0 {
        return None;
    }
    let bound = listener::resolve(&cfg.metrics_bind, cfg.metrics_port)
        .map_err(|e| e.to_string())
        .and_then(|addrs| addrs.into_iter().next().ok_or_else(|| "no address".to_string()))
        .and_then(|sa| crate::metrics::http::bind(sa).map_err(|e| format!("{sa}: {e}")));
    match bound {
        Ok(l) => {
            let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            log::log(LogLevel::Notice, &format!("Metrics on http://{addr}/metrics"));
            Some(l)
        }
        Err(e) => {
            log::log(
                LogLevel::Warning,
                &format!(
                    "metrics endpoint disabled: could not listen on {}:{} ({e})",
                    cfg.metrics_bind, cfg.metrics_port
                ),
            );
            None
        }
    }
}

/// Runs the server until SIGINT/SIGTERM (or `Shared::shutdown`), then returns.
pub fn run(config: Config) -> Result<(), String> {
    log::init(&config)?;
    install_signal_handlers();
    let threads = config.threads.max(1);
    let (resp_port, mc_port) = (config.port, config.memcache_port);
    let mut per_worker = Vec::with_capacity(threads);
    for _ in 0..threads {
        per_worker.push(bind_all(&config, resp_port, mc_port)?);
    }
    if per_worker.first().map(|l| l.is_empty()).unwrap_or(true) {
        return Err("no listener: both port and memcache-port are 0".into());
    }
    // Without a password file, SASL checks the ACL users (see `memcache::sasl`).
    let sasl_from_acl = config.memcache_sasl && config.memcache_sasl_pwdb.is_empty();
    let sasl_users = match config.memcache_sasl && !sasl_from_acl {
        true => Some(crate::memcache::sasl::Users::load(&config.memcache_sasl_pwdb)?),
        false => None,
    };
    let metrics = bind_metrics(&config);
    let mut shared = Shared::new(config);
    shared.memcache_sasl = sasl_users;
    if sasl_from_acl {
        shared.memcache_sasl = Some(crate::memcache::sasl::Users::from_acl(shared.acl.clone()));
    }
    let shared = Arc::new(shared);
    crate::acl::configure(&shared)?;
    // The metrics endpoint comes up first, so that /health can say the server is loading.
    if let Some(l) = metrics {
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("cachette-metrics".into())
            .spawn(move || crate::metrics::http::serve(l, sh))
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    }
    shared.loading.store(true, Ordering::Release);
    notify::status("Loading the dataset");
    // With appendonly yes an existing AOF is the dataset and dump.rdb is not read, as
    // redis-server does; without one the snapshot loads and becomes the AOF's first base.
    let loaded = if shared.config().appendonly {
        crate::persist::aof::load(&shared)
    } else {
        Ok(crate::persist::aof::Loaded::default())
    };
    let loaded = match loaded {
        Ok(l) if l.found => {
            shared.persist.init(unix_ms() / 1000);
            Ok(l)
        }
        Ok(l) => crate::persist::load_at_startup(&shared).map(|()| l),
        Err(e) => Err(e),
    };
    shared.loading.store(false, Ordering::Release);
    let loaded = loaded?;
    crate::persist::aof::Aof::start(shared.clone(), &loaded)?;
    crate::replication::primary::start(shared.clone())
        .map_err(|e| format!("cannot start the replication thread: {e}"))?;
    crate::replication::replica::start(shared.clone())?;
    let mut wakers = Vec::new();
    let mut handles = Vec::new();
    for (i, listeners) in per_worker.into_iter().enumerate() {
        let (w, waker) = worker::Worker::new(i, shared.clone(), listeners).map_err(|e| format!("worker {i}: {e}"))?;
        wakers.push(waker);
        let h = std::thread::Builder::new()
            .name(format!("cachette-w{i}"))
            .spawn(move || w.run())
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        handles.push(h);
    }
    shared.blocking.set_wakers(wakers.clone());
    shared.monitors.set_wakers(wakers.clone());
    shared.set_wakers(wakers.clone());
    log::log(
        LogLevel::Notice,
        &format!(
            "cachette {} ready to accept connections: RESP port {resp_port}, memcached port {mc_port}, {threads} worker(s)",
            env!("CARGO_PKG_VERSION")
        ),
    );
    notify::ready(&format!("Ready to accept connections on ports {resp_port} (RESP) and {mc_port} (memcached)"));
    cron(&shared);
    log::log(LogLevel::Notice, "Received a shutdown signal, closing listeners and flushing replies");
    notify::stopping();
    shared.shutdown.store(true, Ordering::Release);
    for w in &wakers {
        let _ = w.wake();
    }
    for h in handles {
        let _ = h.join();
    }
    shared.aof.stop();
    // Every client is gone, so the final snapshot holds every acknowledged write.
    crate::persist::on_signal_exit(&shared);
    log::log(LogLevel::Notice, "cachette is now ready to exit, bye bye...");
    Ok(())
}

/// The main thread's loop: active expiry and background eviction at `hz`, until a signal or a
/// SHUTDOWN.
fn cron(shared: &Shared) {
    let watchdog = notify::watchdog_interval();
    let mut last_watchdog = Instant::now();
    loop {
        // The watchdog says the server is alive; this loop stalling (a stuck lock) is exactly
        // what should make systemd restart it.
        if watchdog.is_some_and(|w| last_watchdog.elapsed() >= w) {
            notify::watchdog();
            last_watchdog = Instant::now();
        }
        let (hz, effort) = {
            let c = shared.config();
            (c.hz.clamp(1, 500), c.active_expire_effort)
        };
        let period = Duration::from_millis(1000 / u64::from(hz));
        let tick = Instant::now();
        // A paused server changes no data, expiry included (as redis-server during CLIENT PAUSE).
        if shared.active_expire.load(Ordering::Relaxed) && shared.pause.state(unix_ms()).is_none() {
            // Redis gives the slow cycle 25% of each period (more with higher effort).
            let budget = period * (25 + 2 * effort.saturating_sub(1)) / 100;
            let started = Instant::now();
            shared.engine.expire_cycle(unix_ms(), effort, budget);
            crate::commands::notify::flush_expired(shared, None);
            // The latency monitor's `expire-cycle` event, as redis-server records it.
            let ms = started.elapsed().as_millis() as u64;
            let threshold = shared.stats.latency_threshold();
            if threshold > 0 && ms >= threshold {
                let mut lat = shared.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
                lat.add("expire-cycle", unix_ms() / 1000, ms);
            }
        }
        crate::memcache::apply_pending_flush(shared, unix_ms());
        crate::persist::cron(shared);
        // A time-limited eviction round may have left memory over the limit; go on here so an
        // idle server gets back under it too (redis-server's eviction time proc).
        if shared.engine.limits.over_limit() {
            let _ = shared.engine.make_room(unix_ms());
        }
        while tick.elapsed() < period {
            if SIGNALLED.load(Ordering::SeqCst) || shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10).min(period));
        }
    }
}
