//! memcached's administrative text commands: `shutdown`, `verbosity`, `cache_memlimit`,
//! `lru_crawler`, `slabs reassign`, `watch`.
//!
//! cachette answers each as memcached 1.6.18 answers it, with cachette's truth behind the
//! answer: `cache_memlimit` sets `maxmemory` (the engine's memory limit, as CONFIG SET does); `lru_crawler crawl` reclaims expired items now
//! and `metadump` lists the items; `slabs reassign` finds no spare page to move (cachette
//! allocates per item, so there never is one); `watch` is refused as by a memcached started
//! with `-W` (cachette has no log stream to tap). Commands that only tune memcached internals
//! (`slabs automove`, `lru mode|tune|temp_ttl`, `lru_crawler sleep|tocrawl`) are validated by
//! the codec and answered `OK`, with no effect.

use std::sync::atomic::Ordering;

use cachette_memcache::reply;
use cachette_memcache::request::{slab_class_set, LruCrawler};

use super::{stats, Action, DB};
use crate::server::Shared;

/// `shutdown [graceful]`: only with `memcache-enable-shutdown` (memcached `-A`). Both modes
/// stop the whole server the way a SIGTERM does (replies flushed, clients closed); memcached
/// closes the asking connection without a reply, and so does cachette.
pub(super) fn shutdown(shared: &Shared, invalid: bool, out: &mut Vec<u8>) -> Action {
    if !shared.config().memcache_enable_shutdown {
        out.extend_from_slice(reply::SHUTDOWN_NOT_ENABLED);
        return Action::Continue;
    }
    if invalid {
        out.extend_from_slice(b"CLIENT_ERROR invalid shutdown mode\r\n");
        return Action::Continue;
    }
    crate::server::log::log(crate::config::LogLevel::Notice, "shutdown requested by a memcached client");
    shared.shutdown.store(true, Ordering::Release);
    Action::Close
}

/// `cache_memlimit <megabytes>`: the new `maxmemory`, within memcached's bounds.
pub(super) fn cache_memlimit(shared: &Shared, megabytes: u32, noreply: bool, out: &mut Vec<u8>) {
    let line: &[u8] = if megabytes < 8 {
        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    } else if megabytes > 1_000_000_000 {
        b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"
    } else {
        let mut cfg = shared.config_mut();
        cfg.maxmemory = megabytes as usize * 1024 * 1024;
        shared.engine.limits.configure(cfg.memory_settings());
        reply::OK
    };
    if !noreply {
        out.extend_from_slice(line);
    }
}

/// `lru_crawler …`. memcached's crawler runs from start-up, so `enable` reports that it cannot
/// start a second one until `disable` stops it; `crawl` and `metadump` need it running.
pub(super) fn lru_crawler(shared: &Shared, cmd: LruCrawler<'_>, out: &mut Vec<u8>, now: u64) {
    let st = &shared.memcache;
    let disabled = st.crawler_disabled.load(Ordering::Relaxed);
    match cmd {
        LruCrawler::Enable if disabled => {
            st.crawler_disabled.store(false, Ordering::Relaxed);
            out.extend_from_slice(reply::OK);
        }
        LruCrawler::Enable => out.extend_from_slice(b"ERROR failed to start lru crawler thread\r\n"),
        LruCrawler::Disable => {
            st.crawler_disabled.store(true, Ordering::Relaxed);
            out.extend_from_slice(reply::OK);
        }
        LruCrawler::Crawl(_) | LruCrawler::Metadump(_) if disabled => {
            out.extend_from_slice(b"CLIENT_ERROR lru crawler disabled\r\n");
        }
        LruCrawler::Crawl(classes) => {
            if slab_class_set(classes, false).is_none() {
                out.extend_from_slice(b"BADCLASS invalid class id\r\n");
                return;
            }
            let (checked, reclaimed) = shared.engine.reclaim_expired(DB, now);
            st.crawler_items_checked.fetch_add(checked, Ordering::Relaxed);
            st.crawler_reclaimed.fetch_add(reclaimed, Ordering::Relaxed);
            out.extend_from_slice(reply::OK);
        }
        LruCrawler::Metadump(classes) => {
            let Some(set) = slab_class_set(classes, true) else {
                out.extend_from_slice(b"BADCLASS invalid class id\r\n");
                return;
            };
            for it in stats::items_by_recency(shared, now, |c| set & (1 << c) != 0) {
                out.extend_from_slice(b"key=");
                uri_encode(&it.key, out);
                let exp = it.expire_at.map_or(-1, |t| (t / 1000) as i64);
                let cas = super::visible_cas(shared, it.cas);
                let fetch = if it.fetched { "yes" } else { "no" };
                let line =
                    format!(" exp={exp} la={} cas={cas} fetch={fetch} cls={} size={}\n", it.lru, it.class, it.size);
                out.extend_from_slice(line.as_bytes());
            }
            out.extend_from_slice(reply::END);
        }
    }
}

/// memcached's URI encoding of keys in dumps: unreserved characters (RFC 3986) as they are,
/// every other byte as `%XX`.
fn uri_encode(key: &[u8], out: &mut Vec<u8>) {
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// memcached's largest slab class with its default geometry (`-n 48 -f 1.25`, 512 KiB largest
/// chunk): the classes `slabs reassign` accepts are `0..=` this.
fn largest_slab_class() -> i32 {
    let (mut class, mut chunk) = (1, 96.0f64);
    while chunk < 524_288.0 / 1.25 {
        chunk = ((chunk * 1.25).floor() / 8.0).ceil() * 8.0;
        class += 1;
    }
    class
}

/// `slabs reassign <src> <dst>`.
pub(super) fn slabs_reassign(src: i32, dst: i32, out: &mut Vec<u8>) {
    let valid = 0..=largest_slab_class();
    out.extend_from_slice(if !valid.contains(&src) || !valid.contains(&dst) {
        b"BADCLASS invalid src or dst class id\r\n"
    } else if src == dst {
        b"SAME src and dst class are identical\r\n"
    } else {
        b"NOSPARE source class has no spare pages\r\n"
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_encoding() {
        // memcached 1.6.18 with default settings: `slabs reassign 1 39` is NOSPARE, 40 BADCLASS.
        assert_eq!(largest_slab_class(), 39);
        let mut out = Vec::new();
        uri_encode(b"a/b c%~\x01", &mut out);
        assert_eq!(out, b"a%2Fb%20c%25~%01");
    }
}
