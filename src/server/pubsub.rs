//! The Pub/Sub registry: who is subscribed to which channel, pattern or shard channel, and how a
//! published message reaches subscribers on every worker thread.
//!
//! ```text
//!  worker A: PUBLISH ch m ──> registry lock ──> encode m once per RESP version in use
//!            ├─ subscriber is the publisher itself: appended to its output before the reply
//!            └─ others: (client id, Arc bytes) into each worker's mailbox, one wake-up per
//!               worker ──> worker B appends the bytes to the client's output buffer, where
//!               the client's output buffer limit (pubsub class) applies
//! ```
//!
//! Delivery happens under the registry lock, so every subscriber sees the messages of one
//! channel in one global order, as redis-server's single thread gives it; the mailbox locks are
//! leaves under it. The registry never holds a connection, only its id, worker and shared record
//! (whose `resp` field picks the encoding at publish time, so HELLO while subscribed is honoured).
//!
//! Per-connection subscription sets live in the connection's `Session` (the worker owns them);
//! the registry mirrors them. Every change goes through both, and a connection's sets are
//! emptied from the registry when it disconnects or RESETs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cachette_resp::{Encoder, Version};

use super::blocking::Mail;
use super::shared::{ClientInfo, Shared};

/// The three namespaces of subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE: glob patterns over channel names.
    Pattern,
    /// SSUBSCRIBE / SPUBLISH (sharded channels; one shard in a standalone server).
    Shard,
}

/// A subscribed client, as the registry knows it.
#[derive(Clone)]
pub struct Subscriber {
    /// Client id.
    pub id: u64,
    /// The worker that owns the connection.
    pub worker: usize,
    /// Its shared record (protocol version).
    pub info: Arc<ClientInfo>,
}

impl Subscriber {
    fn version(&self) -> Version {
        if self.info.resp.load(Ordering::Relaxed) == 3 {
            Version::Resp3
        } else {
            Version::Resp2
        }
    }
}

#[derive(Default)]
struct Registry {
    channels: HashMap<Vec<u8>, Vec<Subscriber>>,
    patterns: HashMap<Vec<u8>, Vec<Subscriber>>,
    shard: HashMap<Vec<u8>, Vec<Subscriber>>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Vec<u8>, Vec<Subscriber>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
}

/// The publisher, when it may itself be a subscriber: its messages go straight to its own
/// pushes, which the server places before the command's reply, as redis-server does.
pub struct Publisher<'a> {
    /// The publishing client's id.
    pub id: u64,
    /// The worker running the command: mail to its own clients needs no wake-up.
    pub worker: usize,
    /// Where its own pushes go.
    pub out: &'a mut Vec<u8>,
}

/// See the module documentation.
#[derive(Default)]
pub struct PubSub {
    inner: Mutex<Registry>,
    /// Subscriptions of every kind, server-wide: zero makes PUBLISH (and keyspace events, which
    /// are built only when someone might hear them) skip the lock.
    total: AtomicUsize,
}

/// A message encoded for each protocol version, built on first need.
struct Encoded<'m> {
    parts: &'m [&'m [u8]],
    v2: Option<Arc<[u8]>>,
    v3: Option<Arc<[u8]>>,
}

impl Encoded<'_> {
    fn get(&mut self, version: Version) -> Arc<[u8]> {
        let parts = self.parts;
        let slot = if version == Version::Resp3 { &mut self.v3 } else { &mut self.v2 };
        slot.get_or_insert_with(|| {
            let mut buf = Vec::with_capacity(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
            let mut enc = Encoder::new(&mut buf, version);
            enc.push(parts.len());
            for p in parts {
                enc.bulk(p);
            }
            buf.into()
        })
        .clone()
    }
}

impl PubSub {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when no client is subscribed to anything (one relaxed load).
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.total.load(Ordering::Relaxed) == 0
    }

    /// Adds `sub` to `name`'s subscribers. The caller has checked, through the client's own
    /// subscription set, that it is not subscribed yet.
    pub fn subscribe(&self, kind: Kind, name: &[u8], sub: Subscriber) {
        self.lock().map(kind).entry(name.to_vec()).or_default().push(sub);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes client `id` from `name`'s subscribers.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) {
        let mut reg = self.lock();
        let map = reg.map(kind);
        if let Some(subs) = map.get_mut(name) {
            let before = subs.len();
            subs.retain(|s| s.id != id);
            self.total.fetch_sub(before - subs.len(), Ordering::Relaxed);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Names with at least one subscriber of `kind` matching the glob `pattern` (all if None).
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut reg = self.lock();
        reg.map(kind)
            .keys()
            .filter(|n| pattern.map_or(true, |p| crate::glob::glob_match(p, n, false)))
            .cloned()
            .collect()
    }

    /// Number of subscribers of `name` (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.lock().map(kind).get(name).map_or(0, Vec::len)
    }

    /// True when client `id` is subscribed to `name`.
    pub fn is_subscribed(&self, kind: Kind, name: &[u8], id: u64) -> bool {
        self.lock().map(kind).get(name).is_some_and(|subs| subs.iter().any(|s| s.id == id))
    }

    /// Channels, patterns and shard channels with at least one subscriber (INFO stats).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let reg = self.lock();
        (reg.channels.len(), reg.patterns.len(), reg.shard.len())
    }

    /// Number of distinct patterns with a subscriber (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.lock().patterns.len()
    }

    /// Sends `message` on `channel` (a channel, or a shard channel with `Kind::Shard`) to every
    /// subscriber, channel subscribers first, then (for channels) every matching pattern's.
    /// Returns the number of receivers, counting a client once per matching subscription as
    /// redis-server does.
    pub fn publish(
        &self,
        shared: &Shared,
        kind: Kind,
        channel: &[u8],
        message: &[u8],
        mut publisher: Option<Publisher<'_>>,
    ) -> usize {
        if self.is_idle() {
            return 0;
        }
        let reg = self.lock();
        // Per target worker; a handful of workers, so a list beats a map.
        let mut mail: Vec<(usize, Vec<(u64, Mail)>)> = Vec::new();
        let here = publisher.as_ref().map(|p| p.worker);
        let mut receivers = 0;
        let mut send = |sub: &Subscriber, enc: &mut Encoded<'_>| {
            let bytes = enc.get(sub.version());
            match publisher.as_mut() {
                Some(p) if p.id == sub.id => p.out.extend_from_slice(&bytes),
                _ => {
                    let item = (sub.id, Mail::Push(bytes));
                    match mail.iter_mut().find(|(w, _)| *w == sub.worker) {
                        Some((_, items)) => items.push(item),
                        None => mail.push((sub.worker, vec![item])),
                    }
                }
            }
        };
        let (direct, word): (_, &[u8]) = match kind {
            Kind::Shard => (&reg.shard, b"smessage"),
            _ => (&reg.channels, b"message"),
        };
        if let Some(subs) = direct.get(channel) {
            let parts: [&[u8]; 3] = [word, channel, message];
            let mut enc = Encoded { parts: &parts, v2: None, v3: None };
            for sub in subs {
                send(sub, &mut enc);
            }
            receivers += subs.len();
        }
        if kind == Kind::Channel {
            for (pattern, subs) in &reg.patterns {
                if !crate::glob::glob_match(pattern, channel, false) {
                    continue;
                }
                let parts: [&[u8]; 4] = [b"pmessage", pattern, channel, message];
                let mut enc = Encoded { parts: &parts, v2: None, v3: None };
                for sub in subs {
                    send(sub, &mut enc);
                }
                receivers += subs.len();
            }
        }
        for (worker, items) in mail {
            shared.blocking.post(worker, items, here != Some(worker));
        }
        drop(reg);
        receivers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn sub(id: u64, resp: u32) -> Subscriber {
        Subscriber { id, worker: 0, info: Arc::new(ClientInfo::for_test(id, resp, 0)) }
    }

    #[test]
    fn publish_counts_channel_and_pattern_receivers() {
        let shared = Shared::new(Config::default());
        let ps = &shared.pubsub;
        assert!(ps.is_idle());
        assert_eq!(ps.publish(&shared, Kind::Channel, b"news.tech", b"m", None), 0);
        ps.subscribe(Kind::Channel, b"news.tech", sub(1, 2));
        ps.subscribe(Kind::Channel, b"news.tech", sub(2, 3));
        ps.subscribe(Kind::Pattern, b"news.*", sub(1, 2));
        ps.subscribe(Kind::Pattern, b"n[aeiou]ws.*", sub(3, 2));
        ps.subscribe(Kind::Shard, b"news.tech", sub(4, 2));
        // A client matching by channel and by pattern counts twice, as in redis-server.
        assert_eq!(ps.publish(&shared, Kind::Channel, b"news.tech", b"m", None), 4);
        assert_eq!(ps.publish(&shared, Kind::Channel, b"news.art", b"m", None), 2);
        assert_eq!(ps.publish(&shared, Kind::Shard, b"news.tech", b"m", None), 1);
        assert_eq!((ps.count(Kind::Channel, b"news.tech"), ps.pattern_count()), (2, 2));
        assert!(ps.is_subscribed(Kind::Channel, b"news.tech", 2) && !ps.is_subscribed(Kind::Channel, b"news.tech", 3));
        let mut names = ps.names(Kind::Pattern, Some(b"news*"));
        names.sort();
        assert_eq!(names, vec![b"news.*".to_vec()]);
        ps.unsubscribe(Kind::Channel, b"news.tech", 1);
        ps.unsubscribe(Kind::Channel, b"news.tech", 2);
        assert_eq!(ps.count(Kind::Channel, b"news.tech"), 0);
        assert!(ps.names(Kind::Channel, None).is_empty(), "an emptied channel is forgotten");
        for (kind, name, id) in
            [(Kind::Pattern, &b"news.*"[..], 1), (Kind::Pattern, b"n[aeiou]ws.*", 3), (Kind::Shard, b"news.tech", 4)]
        {
            ps.unsubscribe(kind, name, id);
        }
        assert!(ps.is_idle());
    }

    #[test]
    fn the_publisher_hears_itself_in_its_own_protocol() {
        let shared = Shared::new(Config::default());
        shared.pubsub.subscribe(Kind::Channel, b"c", sub(7, 3));
        let mut out = Vec::new();
        let me = Publisher { id: 7, worker: 0, out: &mut out };
        assert_eq!(shared.pubsub.publish(&shared, Kind::Channel, b"c", b"hi", Some(me)), 1);
        assert_eq!(out, b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n");
        // HELLO 2 while subscribed: the record's protocol decides the encoding.
        shared.pubsub.subscribe(Kind::Pattern, b"*", sub(8, 2));
        let mut out = Vec::new();
        let me = Publisher { id: 8, worker: 0, out: &mut out };
        shared.pubsub.publish(&shared, Kind::Channel, b"c", b"hi", Some(me));
        assert_eq!(out, b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$2\r\nhi\r\n");
    }
}
