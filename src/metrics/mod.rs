//! Prometheus metrics: what the server's counters say, rendered in the Prometheus text format on
//! cachette's own small HTTP listener (`metrics-port`, `metrics-bind`; see [`http`]).
//!
//! Nothing is recorded per command here. The server already keeps the counters INFO and
//! memcached `stats` report (relaxed atomics bumped on the hot path); a scrape reads them and
//! hands them to a `metrics-exporter-prometheus` recorder through the `metrics` facade, which
//! renders the text. Serving metrics therefore costs a command nothing, and the figures always
//! agree with INFO.
//!
//! Three families of names can be exposed (`metrics-names`):
//!
//! - `cachette_*`, cachette's own, with a `protocol` label where both protocols count;
//! - `redis_*`, the names and labels of redis_exporter (`redis_db_keys{db="db0"}`, …), so
//!   dashboards built for Redis keep working;
//! - `memcached_*`, the names and labels of memcached_exporter
//!   (`memcached_commands_total{command="get",status="hit"}`, …).

pub mod http;

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, gauge, Label};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::engine::{memory, DATABASES};
use crate::server::Shared;

/// Which families of metric names a scrape shows (`metrics-names`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    /// `cachette_*`.
    pub cachette: bool,
    /// redis_exporter's names.
    pub redis: bool,
    /// memcached_exporter's names.
    pub memcached: bool,
}

impl Families {
    /// The `metrics-names` words.
    pub const NAMES: [&'static str; 4] = ["all", "cachette", "redis", "memcached"];

    /// The families one `metrics-names` word selects (index into [`Families::NAMES`]).
    pub fn from_index(i: usize) -> Families {
        match i {
            1 => Families { cachette: true, redis: false, memcached: false },
            2 => Families { cachette: false, redis: true, memcached: false },
            3 => Families { cachette: false, redis: false, memcached: true },
            _ => Families { cachette: true, redis: true, memcached: true },
        }
    }
}

/// A recorder kept for the process's lifetime; each scrape overwrites every value it shows.
pub struct Exporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Exporter {
    fn default() -> Exporter {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Exporter { recorder, handle }
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Exporter {
    /// Reads the server's counters and renders them in the Prometheus text format.
    pub fn render(&self, shared: &Shared, families: Families) -> String {
        metrics::with_local_recorder(&self.recorder, || {
            let snap = Snapshot::take(shared);
            if families.cachette {
                snap.cachette(shared);
            }
            if families.redis {
                snap.redis();
            }
            if families.memcached {
                snap.memcached(shared);
            }
        });
        let mut text = self.handle.render();
        if families.cachette {
            command_histograms(shared, &mut text);
        }
        text
    }
}

/// Upper bounds (seconds) of the command latency histogram's buckets.
const LATENCY_BOUNDS: [f64; 12] = [1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0];

/// `cachette_command_duration_seconds`, a Prometheus histogram per command, written directly
/// from the per-worker histograms INFO latencystats reads: the facade's histograms would need
/// every command to record a sample, which is the per-command cost this module avoids.
fn command_histograms(sh: &Shared, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "# HELP cachette_command_duration_seconds Time spent running each command");
    let _ = writeln!(out, "# TYPE cachette_command_duration_seconds histogram");
    for (i, spec) in crate::commands::all_specs().iter().enumerate() {
        let t = sh.stats.totals(i, true);
        if t.calls == 0 || t.hist.is_empty() {
            continue;
        }
        let labels = format!("protocol=\"resp\",cmd=\"{}\"", spec.name);
        for bound in LATENCY_BOUNDS {
            let ns = (bound * 1e9) as u64;
            let under: u64 = t
                .hist
                .iter()
                .enumerate()
                .filter(|(idx, _)| crate::server::stats::bucket_high(*idx) <= ns)
                .map(|(_, n)| n)
                .sum();
            let _ = writeln!(out, "cachette_command_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {under}");
        }
        let total: u64 = t.hist.iter().sum();
        let _ = writeln!(out, "cachette_command_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "cachette_command_duration_seconds_sum{{{labels}}} {}", t.usec as f64 / 1e6);
        let _ = writeln!(out, "cachette_command_duration_seconds_count{{{labels}}} {total}");
    }
}

/// The figures one scrape shows, read once so that all three families agree.
struct Snapshot {
    uptime: u64,
    clients_resp: u64,
    clients_mc: u64,
    connections_received: u64,
    rejected: u64,
    commands: u64,
    net_in: u64,
    net_out: u64,
    hits: u64,
    misses: u64,
    expired: u64,
    evicted: u64,
    used: u64,
    rss: u64,
    peak: u64,
    max: u64,
    blocked: u64,
    dirty: u64,
    /// (db, keys, keys with a TTL) for the non-empty databases.
    dbs: Vec<(usize, u64, u64)>,
    /// (command, calls, seconds spent, failed calls) for every command called at least once.
    per_command: Vec<(&'static str, u64, f64, u64)>,
    /// (error prefix, replies) as INFO errorstats counts them.
    errors: Vec<(String, u64)>,
    /// Channels, patterns and shard channels with a subscriber.
    pubsub: (usize, usize, usize),
    /// Unix seconds of the last successful save, whether the last BGSAVE succeeded, whether one
    /// runs now, whether the dataset is loading.
    last_save: u64,
    last_bgsave_ok: bool,
    bgsave_running: bool,
    loading: bool,
    /// AOF bytes while the AOF is on.
    aof_size: Option<u64>,
    maxclients: u64,
    repl: ReplSnapshot,
}

/// What INFO replication says, for the replication metrics.
struct ReplSnapshot {
    master: bool,
    replicas: Vec<crate::replication::ReplicaView>,
    offset: u64,
    /// (first byte offset, bytes held) while the backlog exists.
    backlog: Option<(u64, u64)>,
    backlog_size: u64,
    sync_full: u64,
    sync_partial_ok: u64,
    sync_partial_err: u64,
    now_ms: u64,
    /// The link to the master, on a replica.
    link: Option<crate::replication::replica::LinkView>,
}

impl ReplSnapshot {
    fn take(sh: &Shared) -> ReplSnapshot {
        let feed = &sh.engine.feed;
        ReplSnapshot {
            master: sh.repl.is_master(),
            replicas: sh.repl.replicas(),
            offset: feed.repl_offset(),
            backlog: feed.with_backlog(|b| (b.start() + 1, b.histlen() as u64)),
            backlog_size: sh.config().repl_backlog_size as u64,
            sync_full: load(&sh.repl.sync_full),
            sync_partial_ok: load(&sh.repl.sync_partial_ok),
            sync_partial_err: load(&sh.repl.sync_partial_err),
            now_ms: crate::server::unix_ms(),
            link: sh.replica.link_view(),
        }
    }

    fn lag(&self, r: &crate::replication::ReplicaView) -> f64 {
        (self.now_ms.saturating_sub(r.ack_ms) / 1000) as f64
    }

    fn cachette(&self) {
        let role = if self.master { "master" } else { "replica" };
        gauge!("cachette_replication_role", "role" => role).set(1.0);
        gauge!("cachette_replication_connected_replicas").set(self.replicas.len() as f64);
        gauge!("cachette_replication_offset_bytes").set(self.offset as f64);
        gauge!("cachette_replication_backlog_size_bytes").set(self.backlog_size as f64);
        gauge!("cachette_replication_backlog_active").set(f64::from(u8::from(self.backlog.is_some())));
        gauge!("cachette_replication_backlog_history_bytes").set(self.backlog.map_or(0, |b| b.1) as f64);
        counter!("cachette_replication_full_syncs_total").absolute(self.sync_full);
        counter!("cachette_replication_partial_syncs_total", "result" => "ok").absolute(self.sync_partial_ok);
        counter!("cachette_replication_partial_syncs_total", "result" => "err").absolute(self.sync_partial_err);
        for r in &self.replicas {
            let labels = [Label::new("replica", format!("{}:{}", r.ip, r.port)), Label::new("state", r.state.name())];
            gauge!("cachette_replication_replica_offset_bytes", labels.iter()).set(r.ack_offset as f64);
            gauge!("cachette_replication_replica_lag_seconds", labels.iter()).set(self.lag(r));
        }
        if let Some(l) = self.link {
            gauge!("cachette_replication_master_link_up").set(f64::from(u8::from(l.up)));
            gauge!("cachette_replication_master_last_io_seconds").set(l.last_io_secs as f64);
            gauge!("cachette_replication_master_sync_in_progress").set(f64::from(u8::from(l.syncing)));
            gauge!("cachette_replication_applied_offset_bytes").set(l.applied_offset as f64);
        }
    }

    /// redis_exporter's names.
    fn redis(&self) {
        let role = if self.master { "master" } else { "slave" };
        gauge!("redis_instance_info", "role" => role, "redis_mode" => "standalone").set(1.0);
        gauge!("redis_connected_slaves").set(self.replicas.len() as f64);
        gauge!("redis_master_repl_offset").set(self.offset as f64);
        gauge!("redis_replication_backlog_bytes").set(self.backlog_size as f64);
        gauge!("redis_repl_backlog_is_active").set(f64::from(u8::from(self.backlog.is_some())));
        gauge!("redis_repl_backlog_first_byte_offset").set(self.backlog.map_or(0, |b| b.0) as f64);
        gauge!("redis_repl_backlog_history_bytes").set(self.backlog.map_or(0, |b| b.1) as f64);
        counter!("redis_sync_full_total").absolute(self.sync_full);
        counter!("redis_sync_partial_ok_total").absolute(self.sync_partial_ok);
        counter!("redis_sync_partial_err_total").absolute(self.sync_partial_err);
        for r in &self.replicas {
            let labels = [
                Label::new("slave_ip", r.ip.clone()),
                Label::new("slave_port", r.port.to_string()),
                Label::new("slave_state", r.state.name()),
            ];
            gauge!("redis_connected_slave_offset_bytes", labels.iter()).set(r.ack_offset as f64);
            gauge!("redis_connected_slave_lag_seconds", labels.iter()).set(self.lag(r));
        }
        if let Some(l) = self.link {
            gauge!("redis_master_link_up").set(f64::from(u8::from(l.up)));
            gauge!("redis_master_last_io_seconds_ago").set(l.last_io_secs as f64);
            gauge!("redis_master_sync_in_progress").set(f64::from(u8::from(l.syncing)));
            gauge!("redis_slave_repl_offset").set(l.applied_offset as f64);
            gauge!("redis_master_link_down_since_seconds").set(l.down_secs as f64);
        }
    }
}

impl Snapshot {
    fn take(sh: &Shared) -> Snapshot {
        let c = &sh.counters;
        let st = &sh.engine.stats;
        let all = c.connected_clients.load(Ordering::Relaxed) as u64;
        let mc = c.memcache_connections.load(Ordering::Relaxed) as u64;
        let dbs = (0..DATABASES)
            .filter_map(|db| {
                let (keys, vol) = sh.engine.db_counts(db);
                (keys > 0).then_some((db, keys as u64, vol as u64))
            })
            .collect();
        let per_command = crate::commands::all_specs()
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| {
                let t = sh.stats.totals(i, false);
                (t.calls + t.rejected > 0).then(|| (spec.name, t.calls, t.usec as f64 / 1e6, t.failed + t.rejected))
            })
            .collect();
        Snapshot {
            per_command,
            errors: sh.stats.error_counts(),
            pubsub: sh.pubsub.sizes(),
            last_save: sh.persist.lastsave(),
            last_bgsave_ok: sh.persist.last_bgsave_ok(),
            bgsave_running: sh.persist.bgsave_in_progress(),
            loading: sh.loading.load(Ordering::Relaxed),
            aof_size: sh.aof.size(),
            uptime: sh.uptime_secs(),
            clients_resp: all.saturating_sub(mc),
            clients_mc: mc,
            connections_received: load(&c.connections_received),
            rejected: load(&c.rejected_connections),
            commands: load(&c.commands_processed),
            net_in: load(&c.net_input_bytes),
            net_out: load(&c.net_output_bytes),
            hits: load(&st.keyspace_hits),
            misses: load(&st.keyspace_misses),
            expired: load(&st.expired_keys),
            evicted: load(&sh.engine.limits.evicted_keys),
            used: memory::used() as u64,
            rss: memory::rss() as u64,
            peak: memory::peak() as u64,
            max: sh.engine.limits.maxmemory(),
            blocked: sh.blocking.blocked_clients() as u64,
            dirty: load(&st.dirty),
            dbs,
            maxclients: sh.config().maxclients as u64,
            repl: ReplSnapshot::take(sh),
        }
    }

    fn cachette(&self, sh: &Shared) {
        gauge!("cachette_up").set(1.0);
        gauge!("cachette_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        counter!("cachette_uptime_seconds_total").absolute(self.uptime);
        gauge!("cachette_connections", "protocol" => "resp").set(self.clients_resp as f64);
        gauge!("cachette_connections", "protocol" => "memcached").set(self.clients_mc as f64);
        gauge!("cachette_connections_max").set(self.maxclients as f64);
        counter!("cachette_connections_received_total").absolute(self.connections_received);
        counter!("cachette_connections_rejected_total").absolute(self.rejected);
        counter!("cachette_commands_processed_total").absolute(self.commands);
        counter!("cachette_net_input_bytes_total").absolute(self.net_in);
        counter!("cachette_net_output_bytes_total").absolute(self.net_out);
        counter!("cachette_keyspace_hits_total").absolute(self.hits);
        counter!("cachette_keyspace_misses_total").absolute(self.misses);
        counter!("cachette_expired_keys_total").absolute(self.expired);
        counter!("cachette_evicted_keys_total").absolute(self.evicted);
        gauge!("cachette_memory_used_bytes").set(self.used as f64);
        gauge!("cachette_memory_rss_bytes").set(self.rss as f64);
        gauge!("cachette_memory_peak_bytes").set(self.peak as f64);
        gauge!("cachette_memory_max_bytes").set(self.max as f64);
        gauge!("cachette_blocked_clients").set(self.blocked as f64);
        gauge!("cachette_pubsub_channels").set(self.pubsub.0 as f64);
        gauge!("cachette_pubsub_patterns").set(self.pubsub.1 as f64);
        gauge!("cachette_pubsub_shard_channels").set(self.pubsub.2 as f64);
        gauge!("cachette_changes_since_last_save").set(self.dirty as f64);
        gauge!("cachette_last_save_timestamp_seconds").set(self.last_save as f64);
        gauge!("cachette_last_bgsave_ok").set(f64::from(u8::from(self.last_bgsave_ok)));
        gauge!("cachette_bgsave_in_progress").set(f64::from(u8::from(self.bgsave_running)));
        gauge!("cachette_loading").set(f64::from(u8::from(self.loading)));
        gauge!("cachette_aof_size_bytes").set(self.aof_size.unwrap_or(0) as f64);
        self.repl.cachette();
        for &(db, keys, vol) in &self.dbs {
            let label = [Label::new("db", db.to_string())];
            gauge!("cachette_db_keys", label.iter()).set(keys as f64);
            gauge!("cachette_db_keys_expiring", label.iter()).set(vol as f64);
        }
        // memcached's commands, as its own `stats` counts them.
        let st = &sh.memcache;
        let sum = |a: &[&AtomicU64]| a.iter().map(|x| load(x)).sum::<u64>();
        for (cmd, n) in [
            ("get", load(&st.cmd_get)),
            ("set", load(&st.cmd_set)),
            ("delete", sum(&[&st.delete_hits, &st.delete_misses])),
            ("incr", sum(&[&st.incr_hits, &st.incr_misses])),
            ("decr", sum(&[&st.decr_hits, &st.decr_misses])),
            ("cas", sum(&[&st.cas_hits, &st.cas_misses, &st.cas_badval])),
            ("touch", load(&st.cmd_touch)),
            ("flush", load(&st.cmd_flush)),
        ] {
            counter!("cachette_commands_total", "protocol" => "memcached", "cmd" => cmd).absolute(n);
        }
        for &(cmd, calls, secs, failed) in &self.per_command {
            counter!("cachette_commands_total", "protocol" => "resp", "cmd" => cmd).absolute(calls);
            counter!("cachette_command_errors_total", "protocol" => "resp", "cmd" => cmd).absolute(failed);
            gauge!("cachette_commands_duration_seconds_total", "protocol" => "resp", "cmd" => cmd).set(secs);
        }
    }

    fn redis(&self) {
        gauge!("redis_up").set(1.0);
        gauge!("redis_uptime_in_seconds").set(self.uptime as f64);
        gauge!("redis_connected_clients").set(self.clients_resp as f64);
        gauge!("redis_max_clients").set(self.maxclients as f64);
        gauge!("redis_blocked_clients").set(self.blocked as f64);
        gauge!("redis_pubsub_channels").set(self.pubsub.0 as f64);
        gauge!("redis_pubsub_patterns").set(self.pubsub.1 as f64);
        gauge!("redis_pubsubshard_channels").set(self.pubsub.2 as f64);
        counter!("redis_connections_received_total").absolute(self.connections_received);
        counter!("redis_rejected_connections_total").absolute(self.rejected);
        counter!("redis_commands_processed_total").absolute(self.commands);
        counter!("redis_net_input_bytes_total").absolute(self.net_in);
        counter!("redis_net_output_bytes_total").absolute(self.net_out);
        counter!("redis_keyspace_hits_total").absolute(self.hits);
        counter!("redis_keyspace_misses_total").absolute(self.misses);
        counter!("redis_expired_keys_total").absolute(self.expired);
        counter!("redis_evicted_keys_total").absolute(self.evicted);
        gauge!("redis_memory_used_bytes").set(self.used as f64);
        gauge!("redis_memory_used_rss_bytes").set(self.rss as f64);
        gauge!("redis_memory_used_peak_bytes").set(self.peak as f64);
        gauge!("redis_memory_max_bytes").set(self.max as f64);
        gauge!("redis_rdb_changes_since_last_save").set(self.dirty as f64);
        gauge!("redis_rdb_last_save_timestamp_seconds").set(self.last_save as f64);
        gauge!("redis_rdb_last_bgsave_status").set(f64::from(u8::from(self.last_bgsave_ok)));
        gauge!("redis_rdb_bgsave_in_progress").set(f64::from(u8::from(self.bgsave_running)));
        gauge!("redis_loading_dump_file").set(f64::from(u8::from(self.loading)));
        if let Some(size) = self.aof_size {
            gauge!("redis_aof_current_size_bytes").set(size as f64);
        }
        self.repl.redis();
        for &(db, keys, vol) in &self.dbs {
            let label = [Label::new("db", format!("db{db}"))];
            gauge!("redis_db_keys", label.iter()).set(keys as f64);
            gauge!("redis_db_keys_expiring", label.iter()).set(vol as f64);
        }
        // redis_exporter names commands as INFO commandstats does (`config|get`) and counts
        // seconds as a counter.
        for &(cmd, calls, secs, failed) in &self.per_command {
            counter!("redis_commands_total", "cmd" => cmd).absolute(calls);
            counter!("redis_commands_failed_calls_total", "cmd" => cmd).absolute(failed);
            gauge!("redis_commands_duration_seconds_total", "cmd" => cmd).set(secs);
        }
        for (prefix, n) in &self.errors {
            counter!("redis_errors_total", "err" => prefix.clone()).absolute(*n);
        }
    }

    fn memcached(&self, sh: &Shared) {
        let st = &sh.memcache;
        gauge!("memcached_up").set(1.0);
        gauge!("memcached_uptime_seconds").set(self.uptime as f64);
        gauge!("memcached_version", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        gauge!("memcached_current_connections").set(self.clients_mc as f64);
        gauge!("memcached_max_connections").set(self.maxclients as f64);
        counter!("memcached_connections_total").absolute(self.connections_received);
        counter!("memcached_read_bytes_total").absolute(self.net_in);
        counter!("memcached_written_bytes_total").absolute(self.net_out);
        // memcached's items live in database 0 of the shared keyspace.
        let items = self.dbs.iter().find(|d| d.0 == 0).map_or(0, |d| d.1);
        gauge!("memcached_current_items").set(items as f64);
        gauge!("memcached_current_bytes").set(self.used as f64);
        gauge!("memcached_limit_bytes").set(self.max as f64);
        counter!("memcached_items_total").absolute(load(&st.total_items));
        counter!("memcached_items_evicted_total").absolute(self.evicted);
        counter!("memcached_items_reclaimed_total").absolute(self.expired);
        let commands: [(&str, &str, &AtomicU64); 15] = [
            ("get", "hit", &st.get_hits),
            ("get", "miss", &st.get_misses),
            ("set", "hit", &st.cmd_set),
            ("delete", "hit", &st.delete_hits),
            ("delete", "miss", &st.delete_misses),
            ("incr", "hit", &st.incr_hits),
            ("incr", "miss", &st.incr_misses),
            ("decr", "hit", &st.decr_hits),
            ("decr", "miss", &st.decr_misses),
            ("cas", "hit", &st.cas_hits),
            ("cas", "miss", &st.cas_misses),
            ("cas", "badval", &st.cas_badval),
            ("touch", "hit", &st.touch_hits),
            ("touch", "miss", &st.touch_misses),
            ("flush", "hit", &st.cmd_flush),
        ];
        for (command, status, a) in commands {
            counter!("memcached_commands_total", "command" => command, "status" => status).absolute(load(a));
        }
    }
}
