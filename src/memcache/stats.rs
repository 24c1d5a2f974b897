//! memcached's statistics: the counters it keeps and the `stats` command with its groups
//! (`settings items slabs sizes conns detail cachedump reset`), printed with memcached 1.6.18's
//! field names and order.
//!
//! Every figure is cachette's own: counters are counted where memcached counts them (see
//! [`Stats`]); figures about machinery cachette does not have are left out rather than printed
//! as invented numbers. Connection, byte and eviction totals are the process's, both protocols
//! together, since the two share one server and one memory limit.
//!
//! `stats reset` zeroes what memcached zeroes. Totals kept elsewhere (connections, bytes, the
//! engine's reclaimed keys) are not reset at their source, which Redis's INFO also reports:
//! the reset records a baseline here and memcached's figures are counted from it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cachette_memcache::reply;

use super::{meta, DB, MEMCACHED_VERSION};
use crate::commands::Session;
use crate::engine::evict::Policy;
use crate::server::Shared;

/// Counters memcached's `stats` reports, counted as memcached counts them, and the little
/// runtime state its admin commands change.
#[derive(Default, Debug)]
pub struct Stats {
    /// Retrieval keys requested.
    pub cmd_get: AtomicU64,
    /// Storage commands.
    pub cmd_set: AtomicU64,
    /// flush_all commands.
    pub cmd_flush: AtomicU64,
    /// touch / gat commands.
    pub cmd_touch: AtomicU64,
    /// Meta commands.
    pub cmd_meta: AtomicU64,
    /// Retrievals that found their key.
    pub get_hits: AtomicU64,
    /// Retrievals that did not.
    pub get_misses: AtomicU64,
    /// Retrievals that found their key expired (counted in `get_misses` too).
    pub get_expired: AtomicU64,
    /// delete that found its key.
    pub delete_hits: AtomicU64,
    /// delete that did not.
    pub delete_misses: AtomicU64,
    /// incr that found its key.
    pub incr_hits: AtomicU64,
    /// incr that did not.
    pub incr_misses: AtomicU64,
    /// decr that found its key.
    pub decr_hits: AtomicU64,
    /// decr that did not.
    pub decr_misses: AtomicU64,
    /// cas that stored.
    pub cas_hits: AtomicU64,
    /// cas on a missing key.
    pub cas_misses: AtomicU64,
    /// cas with a stale unique.
    pub cas_badval: AtomicU64,
    /// touch that found its key.
    pub touch_hits: AtomicU64,
    /// touch that did not.
    pub touch_misses: AtomicU64,
    /// Storage commands refused as larger than the item size limit.
    pub store_too_large: AtomicU64,
    /// Storage commands refused for lack of memory (`-M`).
    pub store_no_memory: AtomicU64,
    /// Authentication commands (binary SASL).
    pub auth_cmds: AtomicU64,
    /// Failed authentications.
    pub auth_errors: AtomicU64,
    /// Items ever stored.
    pub total_items: AtomicU64,
    /// Items reclaimed by `lru_crawler crawl`.
    pub crawler_reclaimed: AtomicU64,
    /// Items `lru_crawler crawl` looked at.
    pub crawler_items_checked: AtomicU64,
    /// Unix ms at which a delayed `flush_all` takes effect (0: none pending).
    pub flush_at: AtomicU64,
    /// The level last set by `verbosity` (memcached only reports it).
    pub verbosity: AtomicU64,
    /// memcached `-C` (`memcache-cas no`), copied here from the config at start-up because
    /// every read consults it; see [`super::visible_cas`].
    pub cas_disabled: AtomicBool,
    /// `lru_crawler disable` was sent (memcached starts with its crawler enabled).
    pub crawler_disabled: AtomicBool,
    /// Process totals at the last `stats reset` (see the module documentation).
    baseline: Baseline,
}

#[derive(Default, Debug)]
struct Baseline {
    connections: AtomicU64,
    rejected: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    reclaimed: AtomicU64,
    expired_unfetched: AtomicU64,
    evictions: AtomicU64,
    evicted_unfetched: AtomicU64,
}

impl Stats {
    /// `stats reset`: zero every counter memcached zeroes.
    fn reset(&self, shared: &Shared) {
        for c in [
            &self.cmd_get,
            &self.cmd_set,
            &self.cmd_flush,
            &self.cmd_touch,
            &self.cmd_meta,
            &self.get_hits,
            &self.get_misses,
            &self.get_expired,
            &self.delete_hits,
            &self.delete_misses,
            &self.incr_hits,
            &self.incr_misses,
            &self.decr_hits,
            &self.decr_misses,
            &self.cas_hits,
            &self.cas_misses,
            &self.cas_badval,
            &self.touch_hits,
            &self.touch_misses,
            &self.store_too_large,
            &self.store_no_memory,
            &self.auth_cmds,
            &self.auth_errors,
            &self.total_items,
            &self.crawler_reclaimed,
            &self.crawler_items_checked,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        let c = &shared.counters;
        let b = &self.baseline;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        b.connections.store(ld(&c.connections_received), Ordering::Relaxed);
        b.rejected.store(ld(&c.rejected_connections), Ordering::Relaxed);
        b.bytes_read.store(ld(&c.net_input_bytes), Ordering::Relaxed);
        b.bytes_written.store(ld(&c.net_output_bytes), Ordering::Relaxed);
        b.reclaimed.store(ld(&shared.engine.stats.expired_keys), Ordering::Relaxed);
        b.expired_unfetched.store(expired_unfetched_total(shared), Ordering::Relaxed);
        b.evictions.store(ld(&shared.engine.limits.evicted_keys), Ordering::Relaxed);
        b.evicted_unfetched.store(ld(&shared.engine.limits.evicted_unfetched), Ordering::Relaxed);
    }
}

fn expired_unfetched_total(shared: &Shared) -> u64 {
    let mut n = 0;
    shared.engine.for_each_shard(DB, |_, d| n += d.expired_unfetched());
    n
}

/// The `stats` command: `args` is the rest of the line, spaces trimmed.
pub(super) fn stats(shared: &Shared, session: &Session, args: &[u8], out: &mut Vec<u8>, now: u64) {
    let mut words = args.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let group = words.next().unwrap_or_default();
    let rest: Vec<&[u8]> = words.collect();
    match group {
        b"" => general(shared, out, now),
        b"settings" => settings(shared, out),
        b"items" => items(shared, out, now),
        b"slabs" => slabs(shared, out, now),
        // memcached without `-o track_sizes` answers exactly this.
        b"sizes" => reply::stat(out, "sizes_status", "disabled"),
        b"conns" => conns(shared, session, out),
        b"reset" => {
            shared.memcache.reset(shared);
            out.extend_from_slice(reply::RESET);
            return;
        }
        // Per-prefix statistics are not collected; `on`/`off` are accepted, `dump` is empty.
        b"detail" => {
            out.extend_from_slice(match rest.first().copied() {
                Some(b"on" | b"off") => reply::OK,
                Some(b"dump") => reply::END,
                _ => b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
            });
            return;
        }
        b"cachedump" => {
            cachedump(shared, &rest, out, now);
            return;
        }
        // A memcached built without extstore still answers its group, empty.
        b"extstore" => {}
        // memcached answers unknown groups (and `proxy`, which it was built without) so.
        _ => {
            out.extend_from_slice(reply::ERROR);
            return;
        }
    }
    out.extend_from_slice(reply::END);
}

fn general(shared: &Shared, out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    let c = &shared.counters;
    let b = &st.baseline;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let since = |a: &AtomicU64, base: &AtomicU64| ld(a).saturating_sub(ld(base));
    let (mut items, mut bytes) = (0u64, 0u64);
    shared.engine.for_each_shard(DB, |_, d| {
        d.for_each(|e| {
            if e.expire_at().is_some_and(|t| now > t) {
                return;
            }
            if let Some(v) = e.value.as_str() {
                items += 1;
                bytes += meta::item_size(e.key().len(), v.len(), e.flags);
            }
        });
    });
    let cfg = shared.config();
    let (user, system) = rusage();
    let curr = c.memcache_connections.load(Ordering::Relaxed);
    reply::stat(out, "pid", std::process::id());
    reply::stat(out, "uptime", shared.uptime_secs());
    reply::stat(out, "time", now / 1000);
    reply::stat(out, "version", MEMCACHED_VERSION);
    reply::stat(out, "pointer_size", usize::BITS);
    reply::stat(out, "rusage_user", user);
    reply::stat(out, "rusage_system", system);
    reply::stat(out, "max_connections", cfg.maxclients);
    reply::stat(out, "curr_connections", curr);
    reply::stat(out, "total_connections", since(&c.connections_received, &b.connections));
    reply::stat(out, "rejected_connections", since(&c.rejected_connections, &b.rejected));
    reply::stat(out, "connection_structures", curr);
    for (name, v) in [
        ("cmd_get", &st.cmd_get),
        ("cmd_set", &st.cmd_set),
        ("cmd_flush", &st.cmd_flush),
        ("cmd_touch", &st.cmd_touch),
        ("cmd_meta", &st.cmd_meta),
        ("get_hits", &st.get_hits),
        ("get_misses", &st.get_misses),
        ("get_expired", &st.get_expired),
    ] {
        reply::stat(out, name, ld(v));
    }
    // flush_all removes items at once, so no read ever finds a flushed item.
    reply::stat(out, "get_flushed", 0);
    for (name, v) in [
        ("delete_misses", &st.delete_misses),
        ("delete_hits", &st.delete_hits),
        ("incr_misses", &st.incr_misses),
        ("incr_hits", &st.incr_hits),
        ("decr_misses", &st.decr_misses),
        ("decr_hits", &st.decr_hits),
        ("cas_misses", &st.cas_misses),
        ("cas_hits", &st.cas_hits),
        ("cas_badval", &st.cas_badval),
        ("touch_hits", &st.touch_hits),
        ("touch_misses", &st.touch_misses),
        ("store_too_large", &st.store_too_large),
        ("store_no_memory", &st.store_no_memory),
        ("auth_cmds", &st.auth_cmds),
        ("auth_errors", &st.auth_errors),
    ] {
        reply::stat(out, name, ld(v));
    }
    reply::stat(out, "bytes_read", since(&c.net_input_bytes, &b.bytes_read));
    reply::stat(out, "bytes_written", since(&c.net_output_bytes, &b.bytes_written));
    reply::stat(out, "limit_maxbytes", shared.engine.limits.maxmemory());
    reply::stat(out, "accepting_conns", 1);
    reply::stat(out, "threads", cfg.threads.max(1));
    reply::stat(out, "lru_crawler_running", 0);
    reply::stat(out, "bytes", bytes);
    reply::stat(out, "curr_items", items);
    reply::stat(out, "total_items", ld(&st.total_items));
    reply::stat(out, "expired_unfetched", expired_unfetched_total(shared).saturating_sub(ld(&b.expired_unfetched)));
    let limits = &shared.engine.limits;
    reply::stat(out, "evicted_unfetched", since(&limits.evicted_unfetched, &b.evicted_unfetched));
    // memcached's count of items it evicted although recently used; cachette evicts by its
    // sampled LRU/LFU/TTL policies and does not tell those apart.
    reply::stat(out, "evicted_active", 0);
    reply::stat(out, "evictions", since(&limits.evicted_keys, &b.evictions));
    reply::stat(out, "reclaimed", since(&shared.engine.stats.expired_keys, &b.reclaimed));
    reply::stat(out, "crawler_reclaimed", ld(&st.crawler_reclaimed));
    reply::stat(out, "crawler_items_checked", ld(&st.crawler_items_checked));
}

/// CPU seconds used by the process (user, system), as memcached prints them.
fn rusage() -> (String, String) {
    // SAFETY: getrusage writes only into the zeroed struct it is given, which outlives the call.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return ("0.000000".into(), "0.000000".into());
        }
        u
    };
    let fmt = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (fmt(usage.ru_utime), fmt(usage.ru_stime))
}

/// `stats settings`: the settings memcached 1.6.18 prints, in its order, limited to those that
/// mean something in cachette, with the values cachette actually uses. Slab geometry
/// (`chunk_size`, `growth_factor`) is memcached's default: it is what `me` and `stats
/// items|slabs` use to assign slab classes.
fn settings(shared: &Shared, out: &mut Vec<u8>) {
    let cfg = shared.config();
    let st = &shared.memcache;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    reply::stat(out, "maxbytes", cfg.maxmemory);
    reply::stat(out, "maxconns", cfg.maxclients);
    reply::stat(out, "tcpport", shared.memcache_port);
    reply::stat(out, "udpport", 0);
    let inter = if cfg.bind.is_empty() { "NULL".to_string() } else { cfg.bind.join(",") };
    reply::stat(out, "inter", inter);
    reply::stat(out, "verbosity", st.verbosity.load(Ordering::Relaxed));
    reply::stat(out, "evictions", if cfg.maxmemory_policy == Policy::NoEviction { "off" } else { "on" });
    reply::stat(out, "domain_socket", "NULL");
    reply::stat(out, "shutdown_command", yes_no(cfg.memcache_enable_shutdown));
    reply::stat(out, "growth_factor", "1.25");
    reply::stat(out, "chunk_size", 48);
    reply::stat(out, "num_threads", cfg.threads.max(1));
    reply::stat(out, "cas_enabled", yes_no(cfg.memcache_cas));
    reply::stat(out, "tcp_backlog", cfg.tcp_backlog);
    // memcached -S serves the binary protocol only, whatever -B says.
    let sasl = shared.memcache_sasl.is_some();
    reply::stat(out, "binding_protocol", if sasl { "binary" } else { cfg.memcache_protocol.stats_name() });
    reply::stat(out, "auth_enabled_sasl", if sasl { "yes" } else { "no" });
    reply::stat(out, "auth_enabled_ascii", "no");
    reply::stat(out, "item_size_max", cfg.item_size_max);
    reply::stat(out, "lru_crawler", yes_no(!st.crawler_disabled.load(Ordering::Relaxed)));
    reply::stat(out, "flush_enabled", "yes");
    reply::stat(out, "dump_enabled", "yes");
    reply::stat(out, "idle_timeout", cfg.timeout);
    reply::stat(out, "ssl_enabled", "no");
}

/// Per slab class totals over the live memcached items of db 0 (string values; a Redis
/// collection is invisible to memcached), by the class memcached would put each item in:
/// `(class, chunk size) -> (items, item bytes, oldest last access in unix seconds)`.
fn slab_usage(shared: &Shared, now: u64) -> std::collections::BTreeMap<(u32, u64), (u64, u64, u32)> {
    let mut classes = std::collections::BTreeMap::new();
    shared.engine.for_each_shard(DB, |_, d| {
        d.for_each(|e| {
            let Some(v) = e.value.as_str() else { return };
            if e.expire_at().is_some_and(|t| now > t) {
                return;
            }
            let size = meta::item_size(e.key().len(), v.len(), e.flags);
            let c = classes.entry(meta::slab_class(size)).or_insert((0, 0, u32::MAX));
            c.0 += 1;
            c.1 += size;
            c.2 = c.2.min(e.lru);
        });
    });
    classes
}

/// `stats items`: per slab class holding items, the counts cachette has (memcached prints more
/// lines per class, about its segmented LRU, which cachette does not have). Nothing but `END`
/// when there are no items, as memcached. `age` is the seconds since the class's least recently
/// used item was last accessed; `evicted` and `outofmemory` are always 0.
fn items(shared: &Shared, out: &mut Vec<u8>, now: u64) {
    for ((class, _), (number, bytes, oldest)) in slab_usage(shared, now) {
        let age = (now / 1000).saturating_sub(u64::from(oldest));
        reply::stat(out, &format!("items:{class}:number"), number);
        reply::stat(out, &format!("items:{class}:age"), age);
        reply::stat(out, &format!("items:{class}:mem_requested"), bytes);
        reply::stat(out, &format!("items:{class}:evicted"), 0);
        reply::stat(out, &format!("items:{class}:outofmemory"), 0);
    }
}

/// `stats slabs`: per class the chunk size and the chunks its items would use, then memcached's
/// totals. cachette allocates per item, not in slab pages, so the page lines are left out and
/// `total_malloced` is the bytes of those chunks (0 with no items, as memcached prints it).
fn slabs(shared: &Shared, out: &mut Vec<u8>, now: u64) {
    let classes = slab_usage(shared, now);
    let mut malloced = 0;
    for (&(class, chunk), &(number, _, _)) in &classes {
        reply::stat(out, &format!("{class}:chunk_size"), chunk);
        reply::stat(out, &format!("{class}:used_chunks"), number);
        malloced += chunk * number;
    }
    reply::stat(out, "active_slabs", classes.len());
    reply::stat(out, "total_malloced", malloced);
}

/// `stats conns`: memcached's lines for each memcached-protocol connection, keyed by socket fd.
/// The connection asking is in `conn_parse_cmd`; the others are reported as `conn_waiting`
/// (cachette does not publish a connection's parse state). memcached also lists its listening
/// sockets; cachette's per-worker listeners are not connections and are left out.
fn conns(shared: &Shared, session: &Session, out: &mut Vec<u8>) {
    let mut conns: Vec<_> = shared.lock_clients().values().filter(|c| c.memcache).cloned().collect();
    conns.sort_by_key(|c| c.fd);
    let addr = |a: std::net::SocketAddr| match a {
        std::net::SocketAddr::V4(_) => format!("tcp:{a}"),
        std::net::SocketAddr::V6(_) => format!("tcp6:{a}"),
    };
    for c in conns {
        let fd = c.fd;
        let state = if c.id == session.info.id { "conn_parse_cmd" } else { "conn_waiting" };
        let idle_ms = (c.created.elapsed().as_millis() as u64).saturating_sub(c.last_active_ms.load(Ordering::Relaxed));
        reply::stat(out, &format!("{fd}:addr"), addr(c.addr));
        reply::stat(out, &format!("{fd}:listen_addr"), addr(c.laddr));
        reply::stat(out, &format!("{fd}:state"), state);
        reply::stat(out, &format!("{fd}:secs_since_last_cmd"), idle_ms / 1000);
    }
}

/// `stats cachedump <class> <limit>`: `ITEM key [size b; expiry s]` for up to `limit` items of
/// a slab class (0: all), then `END`. The expiry is a unix time, 0 for none. memcached lists
/// its LRU from the most recent; cachette lists the most recently used first too.
fn cachedump(shared: &Shared, args: &[&[u8]], out: &mut Vec<u8>, now: u64) {
    if args.len() < 2 {
        out.extend_from_slice(b"CLIENT_ERROR bad command line\r\n");
        return;
    }
    let num = |s: &[u8]| std::str::from_utf8(s).ok().and_then(|s| s.parse::<u32>().ok());
    let (Some(class), Some(limit)) = (num(args[0]), num(args[1])) else {
        out.extend_from_slice(reply::CLIENT_ERROR_BAD_FORMAT);
        return;
    };
    if class == 0 || class > cachette_memcache::request::MAX_SLAB_CLASS {
        out.extend_from_slice(b"CLIENT_ERROR Illegal slab id\r\n");
        return;
    }
    let mut found = items_by_recency(shared, now, |c| c == class);
    if limit != 0 {
        found.truncate(limit as usize);
    }
    for it in found {
        out.extend_from_slice(b"ITEM ");
        out.extend_from_slice(&it.key);
        out.extend_from_slice(
            format!(" [{} b; {} s]\r\n", it.value_len, it.expire_at.map_or(0, |t| t / 1000)).as_bytes(),
        );
    }
    out.extend_from_slice(reply::END);
}

/// One live memcached item, as the dump commands print it.
pub(super) struct DumpedItem {
    pub key: Vec<u8>,
    pub value_len: usize,
    pub expire_at: Option<u64>,
    pub lru: u32,
    pub cas: u64,
    pub fetched: bool,
    pub class: u32,
    pub size: u64,
}

/// The live items of db 0 in classes `want` accepts, most recently used first. Shards are
/// locked one at a time, so the dump is not a snapshot (neither is memcached's).
pub(super) fn items_by_recency(shared: &Shared, now: u64, want: impl Fn(u32) -> bool) -> Vec<DumpedItem> {
    let mut found = Vec::new();
    shared.engine.for_each_shard(DB, |_, d| {
        d.for_each(|e| {
            let Some(v) = e.value.as_str() else { return };
            if e.expire_at().is_some_and(|t| now > t) {
                return;
            }
            let size = meta::item_size(e.key().len(), v.len(), e.flags);
            let class = meta::slab_class(size).0;
            if want(class) {
                found.push(DumpedItem {
                    key: e.key().to_vec(),
                    value_len: v.len(),
                    expire_at: e.expire_at(),
                    lru: e.lru,
                    cas: e.cas,
                    fetched: e.mc_bits & crate::engine::mc_bits::FETCHED != 0,
                    class,
                    size,
                });
            }
        });
    });
    found.sort_by_key(|it| std::cmp::Reverse(it.lru));
    found
}
