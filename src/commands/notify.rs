//! Keyspace notifications: the `notify-keyspace-events` classes, their parsing and printing as
//! redis-server does them, and the publishing of `__keyspace@<db>__:<key>` (message: the event)
//! and `__keyevent@<db>__:<event>` (message: the key).
//!
//! Commands call [`Ctx::notify`](super::Ctx::notify) after their change, with the class and the
//! event name redis-server uses for that command. The check in front is one relaxed load of
//! `Shared::notify_flags`, which holds the configured classes only when `K` or `E` is on and
//! someone could hear (zero otherwise), so a write pays nothing more when notifications are off.
//!
//! Writes through the memcached protocol notify too, with the event of the equivalent Redis
//! command (see `memcache`), since both protocols share one keyspace.

use std::sync::atomic::Ordering;

use crate::server::pubsub::{Kind, Publisher};
use crate::server::Shared;

/// `K`: `__keyspace@<db>__:<key>` channels.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: `__keyevent@<db>__:<event>` channels.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, …).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expired keys.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: evicted keys.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses (reads that found nothing).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module key types.
pub const MODULE: u32 = 1 << 13;
/// `n`: a new key was created.
pub const NEW: u32 = 1 << 14;
/// `A`: alias for `g$lshzxetd`.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a `notify-keyspace-events` value; None for a character Redis does not know.
pub fn parse_flags(s: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for c in s {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// Formats flags as CONFIG GET shows them. Like redis-server, `A` hides `n` when all of `A`'s
/// classes are on.
pub fn flags_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (f, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & f != 0 {
                s.push(c);
            }
        }
    }
    for (f, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & f != 0 {
            s.push(c);
        }
    }
    s
}

/// The flags commands test: the configured classes when `K` or `E` is on, else zero.
pub fn effective(flags: u32) -> u32 {
    if flags & (KEYSPACE | KEYEVENT) == 0 {
        0
    } else {
        flags
    }
}

/// Applies a configured value to the server's fast-path flag and the engine's logs. The expiry
/// and eviction logs also run while a client tracks keys (their deletions invalidate).
pub fn configure(shared: &Shared, flags: u32) {
    let flags = effective(flags);
    shared.notify_flags.store(flags, Ordering::Relaxed);
    refresh_logs(shared);
}

/// Turns the engine's logs on exactly when someone needs them: notifications of their class,
/// or (expired, evicted) client tracking.
pub fn refresh_logs(shared: &Shared) {
    let flags = shared.notify_flags.load(Ordering::Relaxed);
    let tracking = shared.tracking.is_active();
    shared.engine.expired.set_enabled(flags & EXPIRED != 0 || tracking);
    shared.engine.evicted.set_enabled(flags & EVICTED != 0 || tracking);
    shared.engine.created.set_enabled(flags & NEW != 0);
    shared.engine.missed.set_enabled(flags & KEY_MISS != 0);
}

/// True when the engine reclaimed or evicted keys not yet announced (two atomic loads).
#[inline]
pub fn pending(shared: &Shared) -> bool {
    let e = &shared.engine;
    e.expired.has_pending() || e.evicted.has_pending() || e.created.has_pending() || e.missed.has_pending()
}

/// Publishes one event. `publisher` is the client whose command caused it, if it may hear it
/// itself (the push then precedes its reply, as in redis-server).
pub fn emit(shared: &Shared, class: u32, event: &str, db: usize, key: &[u8], mut publisher: Option<Publisher<'_>>) {
    let flags = shared.notify_flags.load(Ordering::Relaxed);
    if flags & class == 0 || shared.pubsub.is_idle() {
        return;
    }
    if flags & KEYSPACE != 0 {
        let mut chan = format!("__keyspace@{db}__:").into_bytes();
        chan.extend_from_slice(key);
        let me = publisher.as_mut().map(|p| Publisher { id: p.id, worker: p.worker, out: &mut *p.out });
        shared.pubsub.publish(shared, Kind::Channel, &chan, event.as_bytes(), me);
    }
    if flags & KEYEVENT != 0 {
        let chan = format!("__keyevent@{db}__:{event}").into_bytes();
        shared.pubsub.publish(shared, Kind::Channel, &chan, key, publisher);
    }
}

/// Publishes the `expired`, `evicted`, `keymiss` and `new` events of keys the engine
/// reclaimed, evicted, missed or created since the last call (and invalidates the reclaimed and
/// evicted ones for tracking clients).
pub fn flush_expired(shared: &Shared, mut publisher: Option<Publisher<'_>>) {
    for (db, key) in shared.engine.expired.take() {
        let me = publisher.as_mut().map(|p| Publisher { id: p.id, worker: p.worker, out: &mut *p.out });
        emit(shared, EXPIRED, "expired", db, &key, me);
        shared.tracking.invalidate(shared, &key, None);
    }
    for (db, key) in shared.engine.evicted.take() {
        let me = publisher.as_mut().map(|p| Publisher { id: p.id, worker: p.worker, out: &mut *p.out });
        emit(shared, EVICTED, "evicted", db, &key, me);
        shared.tracking.invalidate(shared, &key, None);
    }
    for (db, key) in shared.engine.missed.take() {
        let me = publisher.as_mut().map(|p| Publisher { id: p.id, worker: p.worker, out: &mut *p.out });
        emit(shared, KEY_MISS, "keymiss", db, &key, me);
    }
    for (db, key) in shared.engine.created.take() {
        let me = publisher.as_mut().map(|p| Publisher { id: p.id, worker: p.worker, out: &mut *p.out });
        emit(shared, NEW, "new", db, &key, me);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_as_redis_server_prints_them() {
        let f = |s: &str| flags_to_string(parse_flags(s.as_bytes()).expect("valid"));
        assert_eq!(f("KEA"), "AKE");
        assert_eq!(f("zK$"), "$zK");
        assert_eq!(f(""), "");
        assert_eq!(f("Ax"), "A");
        assert_eq!(f("KAmn"), "AKm", "A hides n");
        assert_eq!(f("gn"), "gn");
        assert_eq!(parse_flags(b"q"), None);
        assert_eq!(effective(parse_flags(b"A").expect("valid")), 0, "no K or E: nothing to send");
    }
}
