//! Client-side caching (CLIENT TRACKING): which client may hold which key in its local cache,
//! and the invalidation messages sent when a key changes.
//!
//! Two modes, as in redis-server. *Default*: the keys of every read-only command a tracking
//! client runs are remembered (`remember`); the first write to such a key sends each
//! remembering client one invalidation and forgets them (one message per cached read).
//! *BCAST*: a client names prefixes, and every write to a key under one of them is announced.
//! OPTIN/OPTOUT (which reads are remembered) and CACHING live in the client's `Session`.
//!
//! An invalidation goes to the client, or to its REDIRECT target: a RESP3 receiver gets the
//! push `>2 invalidate [key]`; a RESP2 receiver (redirect only) gets it as a message on
//! `__redis__:invalidate`, and only while subscribed there, as redis-server sends it. Delivery
//! uses the pub/sub path: the writer itself gets it after its reply, other clients through
//! their worker's mailbox. Writes from the memcached port invalidate too. The whole table is
//! skipped with one relaxed load while no client tracks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cachette_resp::{Encoder, Version};

use super::blocking::Mail;
use super::pubsub::{Kind, Publisher};
use super::shared::{ClientInfo, Shared};

/// The channel RESP2 redirect targets receive invalidations on.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// A tracking client, as the table knows it.
#[derive(Clone)]
pub struct Tracker {
    /// The worker that owns the connection.
    pub worker: usize,
    /// Its shared record.
    pub info: Arc<ClientInfo>,
    /// REDIRECT target's id; 0 = the client itself.
    pub redirect: u64,
    /// NOLOOP: not told about its own writes.
    pub noloop: bool,
    /// BCAST prefixes (empty in default mode; BCAST without PREFIX is the empty prefix).
    pub prefixes: Option<Vec<Vec<u8>>>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<u64, Tracker>,
    /// Default mode: key → ids of the clients that read it since its last invalidation.
    keys: HashMap<Vec<u8>, Vec<u64>>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Tracking {
    inner: Mutex<Inner>,
    active: AtomicUsize,
}

impl Tracking {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while any client tracks (one relaxed load).
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Turns tracking on (or changes it) for client `id`.
    pub fn enable(&self, id: u64, t: Tracker) {
        let mut inner = self.lock();
        if inner.clients.insert(id, t).is_none() {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Turns tracking off for client `id` (OFF, RESET, disconnect).
    pub fn disable(&self, id: u64) {
        let mut inner = self.lock();
        if inner.clients.remove(&id).is_some() {
            self.active.fetch_sub(1, Ordering::Relaxed);
            inner.keys.retain(|_, ids| {
                ids.retain(|&c| c != id);
                !ids.is_empty()
            });
        }
    }

    /// Keys remembered, (key, client) pairs, and BCAST prefixes in use (INFO stats'
    /// `tracking_total_keys`, `tracking_total_items`, `tracking_total_prefixes`).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        let items = inner.keys.values().map(Vec::len).sum();
        let mut prefixes: Vec<&Vec<u8>> =
            inner.clients.values().filter_map(|t| t.prefixes.as_ref()).flatten().collect();
        prefixes.sort();
        prefixes.dedup();
        (inner.keys.len(), items, prefixes.len())
    }

    /// True when client `id` exists as far as REDIRECT is concerned.
    pub fn client_exists(shared: &Shared, id: u64) -> bool {
        shared.lock_clients().contains_key(&id)
    }

    /// Remembers that client `id` (default mode) read `keys`.
    pub fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k [u8]>) {
        let mut inner = self.lock();
        for k in keys {
            let ids = inner.keys.entry(k.to_vec()).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }

    /// Announces that `key` changed. `writer` is the client whose command changed it (None for
    /// the memcached port and the server itself); its own invalidations go to `writer.out`.
    pub fn invalidate(&self, shared: &Shared, key: &[u8], writer: Option<Publisher<'_>>) {
        if !self.is_active() {
            return;
        }
        let mut inner = self.lock();
        let mut targets: Vec<u64> = inner.keys.remove(key).unwrap_or_default();
        for (&id, t) in &inner.clients {
            if let Some(prefixes) = &t.prefixes {
                if prefixes.iter().any(|p| key.starts_with(p)) && !targets.contains(&id) {
                    targets.push(id);
                }
            }
        }
        let trackers: Vec<Tracker> = targets.iter().filter_map(|id| inner.clients.get(id).cloned()).collect();
        drop(inner);
        send(shared, &trackers, Some(key), writer);
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told to drop its whole cache (a null key).
    pub fn invalidate_all(&self, shared: &Shared, writer: Option<Publisher<'_>>) {
        if !self.is_active() {
            return;
        }
        let mut inner = self.lock();
        inner.keys.clear();
        let trackers: Vec<Tracker> = inner.clients.values().cloned().collect();
        drop(inner);
        send(shared, &trackers, None, writer);
    }
}

fn version_of(info: &ClientInfo) -> Version {
    if info.resp.load(Ordering::Relaxed) == 3 {
        Version::Resp3
    } else {
        Version::Resp2
    }
}

/// The invalidation message for one receiver; None when a RESP2 receiver cannot take it.
fn message(shared: &Shared, receiver: &ClientInfo, redirected: bool, key: Option<&[u8]>) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let v = version_of(receiver);
    let mut enc = Encoder::new(&mut buf, v);
    let keys = |enc: &mut Encoder<'_>| match key {
        Some(k) => {
            enc.array(1);
            enc.bulk(k);
        }
        None => enc.null(),
    };
    if v == Version::Resp3 {
        enc.push(2);
        enc.bulk(b"invalidate");
        keys(&mut enc);
    } else if redirected && shared.pubsub.is_subscribed(Kind::Channel, INVALIDATE_CHANNEL, receiver.id) {
        enc.push(3);
        enc.bulk(b"message");
        enc.bulk(INVALIDATE_CHANNEL);
        keys(&mut enc);
    } else {
        return None;
    }
    Some(buf)
}

/// `>2 tracking-redir-broken <id>` for a RESP3 client whose REDIRECT target is gone.
fn redirect_broken(info: &ClientInfo, target: u64) -> Option<Vec<u8>> {
    if version_of(info) != Version::Resp3 {
        return None;
    }
    let mut buf = Vec::new();
    let mut enc = Encoder::new(&mut buf, Version::Resp3);
    enc.push(2);
    enc.bulk(b"tracking-redir-broken");
    enc.int(target as i64);
    Some(buf)
}

fn send(shared: &Shared, trackers: &[Tracker], key: Option<&[u8]>, mut writer: Option<Publisher<'_>>) {
    let writer_id = writer.as_ref().map(|w| w.id);
    for t in trackers {
        if t.noloop && writer_id == Some(t.info.id) {
            continue;
        }
        let target = (t.redirect != 0).then(|| shared.lock_clients().get(&t.redirect).cloned());
        let (receiver, worker, msg) = match target {
            None => (t.info.clone(), t.worker, message(shared, &t.info, false, key)),
            Some(Some(info)) => {
                let msg = message(shared, &info, true, key);
                let worker = info.worker;
                (info, worker, msg)
            }
            // The target has gone: as redis-server, a RESP3 client is told its redirection
            // broke, in place of the invalidation.
            Some(None) => (t.info.clone(), t.worker, redirect_broken(&t.info, t.redirect)),
        };
        let Some(msg) = msg else { continue };
        match writer.as_mut() {
            Some(w) if w.id == receiver.id => w.out.extend_from_slice(&msg),
            _ => {
                let here = writer.as_ref().map(|w| w.worker);
                let mail = std::iter::once((receiver.id, Mail::Push(msg.into())));
                shared.blocking.post(worker, mail, here != Some(worker));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn tracker(id: u64, prefixes: Option<Vec<Vec<u8>>>, noloop: bool) -> Tracker {
        Tracker { worker: 0, info: Arc::new(ClientInfo::for_test(id, 3, 0)), redirect: 0, noloop, prefixes }
    }

    const INVALIDATE_K: &[u8] = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n";

    #[test]
    fn a_read_key_is_invalidated_once() {
        let shared = Shared::new(Config::default());
        let t = &shared.tracking;
        assert!(!t.is_active());
        t.enable(1, tracker(1, None, false));
        t.remember(1, [&b"k"[..]].into_iter());
        let mut out = Vec::new();
        t.invalidate(&shared, b"k", Some(Publisher { id: 1, worker: 0, out: &mut out }));
        assert_eq!(out, INVALIDATE_K, "the writer that read the key hears of its own write");
        let mut out = Vec::new();
        t.invalidate(&shared, b"k", Some(Publisher { id: 1, worker: 0, out: &mut out }));
        assert!(out.is_empty(), "forgotten until read again");
        t.disable(1);
        assert!(!t.is_active());
    }

    #[test]
    fn bcast_prefixes_and_noloop() {
        let shared = Shared::new(Config::default());
        let t = &shared.tracking;
        t.enable(1, tracker(1, Some(vec![b"k".to_vec()]), false));
        t.enable(2, tracker(2, Some(vec![b"k".to_vec()]), true));
        for (writer, heard) in [(1, true), (2, false)] {
            let mut out = Vec::new();
            t.invalidate(&shared, b"k", Some(Publisher { id: writer, worker: 0, out: &mut out }));
            assert_eq!(out == INVALIDATE_K, heard, "writer {writer}");
            let mut out = Vec::new();
            t.invalidate(&shared, b"x", Some(Publisher { id: writer, worker: 0, out: &mut out }));
            assert!(out.is_empty(), "outside the prefix");
        }
    }
}
