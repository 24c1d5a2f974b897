//! Clients blocked in BLPOP and friends: who waits for which key, in arrival order, and how a
//! ready key reaches them across worker threads.
//!
//! ```text
//!  worker A: BLPOP q 0 finds q empty ──> Session.block ──> register(waiter) ──> connection paused
//!  worker B: LPUSH q x  ──> engine stores q ──> Readiness marks q ready
//!            after the command: serve() ──> claim first waiter of q ──> re-run its BLPOP here,
//!            reply bytes ──> A's mailbox + Waker ──> worker A appends them, resumes the client
//! ```
//!
//! Serving happens in the thread that made the key ready, right after its command, so the
//! element a push provides goes to the longest-waiting client before the pusher's next command
//! runs — redis-server's guarantee. A waiter is *claimed* (taken out of every queue) before its
//! command re-runs, which arbitrates against its own timeout and disconnection: whoever removes
//! it first wins. If the re-run finds nothing after all (another client took the element), the
//! waiter goes back to the front of its queues.
//!
//! A client that disconnects while its reply is in the mailbox loses the popped element with
//! it. That is redis-server's rule too, not a wider one: there, a client whose close has not
//! been read yet is still served and the reply dies in its output buffer; here, a client whose
//! close its worker has not yet seen can still be claimed. Once the close is seen, `cancel`
//! takes the waiter out before any claim, and nothing is popped for it. Undoing a pop instead
//! would reorder the list under clients that already saw it.
//! The per-worker mailboxes also carry pub/sub pushes (see `pubsub`): one mechanism for every
//! cross-thread delivery to a connection.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use cachette_resp::{Args, Version};
use mio::Waker;

use super::shared::{unix_ms, ClientInfo, Shared};
use crate::commands::{self, Argv, Session};

/// A blocked client, as the registry keeps it.
pub struct Waiter {
    /// Client id.
    pub id: u64,
    /// Index of the worker that owns the connection.
    pub worker: usize,
    /// Database the command runs in.
    pub db: usize,
    /// Protocol version of the client, for the reply.
    pub version: Version,
    /// The client's shared record.
    pub info: Arc<ClientInfo>,
    /// The blocking command, re-run when a key is ready.
    pub argv: Vec<Vec<u8>>,
    /// The keys it waits for.
    pub keys: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    queues: HashMap<(usize, Vec<u8>), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
}

/// What another thread hands to a worker for one of its clients.
pub enum Mail {
    /// The reply of a blocked command served elsewhere: append it and resume the client.
    Reply(Vec<u8>),
    /// A push (pub/sub message, keyspace notification), encoded once for all its receivers:
    /// append it, subject to the client's output buffer limit.
    Push(Arc<[u8]>),
}

struct Mailbox {
    replies: Mutex<Vec<(u64, Mail)>>,
    /// Set with each delivery, so the worker's every-pass check is one atomic load.
    has_mail: std::sync::atomic::AtomicBool,
    waker: Arc<Waker>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Blocking {
    inner: Mutex<Inner>,
    mailboxes: OnceLock<Vec<Mailbox>>,
}

impl Blocking {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of clients blocked right now (INFO clients `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.lock().waiters.len()
    }

    /// Installs one mailbox per worker, with the waker that interrupts its poll.
    pub fn set_wakers(&self, wakers: Vec<Arc<Waker>>) {
        let boxes = wakers
            .into_iter()
            .map(|waker| Mailbox { replies: Mutex::new(Vec::new()), has_mail: Default::default(), waker })
            .collect();
        let _ = self.mailboxes.set(boxes);
    }

    /// Registers a waiter at the back of each of its keys' queues.
    pub fn register(&self, shared: &Shared, w: Waiter) {
        let mut inner = self.lock();
        for key in &w.keys {
            inner.queues.entry((w.db, key.clone())).or_default().push_back(w.id);
            shared.engine.ready.watch(w.db, key);
        }
        inner.waiters.insert(w.id, w);
    }

    /// Removes a waiter (timeout, disconnect); false when it was already claimed for serving.
    pub fn cancel(&self, shared: &Shared, id: u64) -> bool {
        let mut inner = self.lock();
        match inner.waiters.remove(&id) {
            Some(w) => {
                Self::unqueue(&mut inner, shared, &w);
                true
            }
            None => false,
        }
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait as if it timed out, or with the UNBLOCKED error.
    /// False when it is not blocked (or a server already claimed it).
    pub fn unblock(&self, shared: &Shared, id: u64, error: bool) -> bool {
        let w = {
            let mut inner = self.lock();
            let Some(w) = inner.waiters.remove(&id) else { return false };
            Self::unqueue(&mut inner, shared, &w);
            w
        };
        let mut reply = Vec::new();
        let mut enc = cachette_resp::Encoder::new(&mut reply, w.version);
        if error {
            enc.error(b"UNBLOCKED client unblocked via CLIENT UNBLOCK");
        } else {
            enc.null_array();
        }
        self.deliver(w.worker, w.id, reply);
        true
    }

    /// True while client `id` waits in the registry (CLIENT LIST flag `b`).
    pub fn is_blocked(&self, id: u64) -> bool {
        self.lock().waiters.contains_key(&id)
    }

    fn unqueue(inner: &mut Inner, shared: &Shared, w: &Waiter) {
        for key in &w.keys {
            let k = (w.db, key.clone());
            if let Some(q) = inner.queues.get_mut(&k) {
                q.retain(|&id| id != w.id);
                if q.is_empty() {
                    inner.queues.remove(&k);
                }
            }
            shared.engine.ready.unwatch(w.db, key);
        }
    }

    /// Takes the longest-waiting client on `key` out of every queue.
    fn claim_first(&self, shared: &Shared, db: usize, key: &[u8]) -> Option<Waiter> {
        let mut inner = self.lock();
        let id = *inner.queues.get(&(db, key.to_vec()))?.front()?;
        let w = inner.waiters.remove(&id)?;
        Self::unqueue(&mut inner, shared, &w);
        Some(w)
    }

    /// Puts a claimed waiter back at the front of its queues: its turn is not lost.
    fn requeue_front(&self, shared: &Shared, w: Waiter) {
        let mut inner = self.lock();
        for key in &w.keys {
            inner.queues.entry((w.db, key.clone())).or_default().push_front(w.id);
            shared.engine.ready.watch(w.db, key);
        }
        inner.waiters.insert(w.id, w);
    }

    fn deliver(&self, worker: usize, id: u64, reply: Vec<u8>) {
        self.post(worker, std::iter::once((id, Mail::Reply(reply))), true);
    }

    /// Hands `mail` to `worker`'s clients: one lock of its mailbox, and one wake-up unless one
    /// is already pending (the worker clears the flag before it empties the box, so a wake-up
    /// is never lost). `wake` false is for mail a worker posts to itself: it looks at its own
    /// box before it sleeps ([`Blocking::has_mail`]), so the syscall is spared.
    pub fn post(&self, worker: usize, mail: impl IntoIterator<Item = (u64, Mail)>, wake: bool) {
        if let Some(mb) = self.mailboxes.get().and_then(|m| m.get(worker)) {
            mb.replies.lock().unwrap_or_else(|p| p.into_inner()).extend(mail);
            if !mb.has_mail.swap(true, std::sync::atomic::Ordering::AcqRel) && wake {
                let _ = mb.waker.wake();
            }
        }
    }

    /// True when `worker` has mail waiting (one atomic load).
    pub fn has_mail(&self, worker: usize) -> bool {
        self.mailboxes
            .get()
            .and_then(|m| m.get(worker))
            .is_some_and(|mb| mb.has_mail.load(std::sync::atomic::Ordering::Acquire))
    }

    /// The mail delivered to `worker`'s clients since the last call.
    pub fn take_mail(&self, worker: usize) -> Vec<(u64, Mail)> {
        match self.mailboxes.get().and_then(|m| m.get(worker)) {
            Some(mb) if mb.has_mail.swap(false, std::sync::atomic::Ordering::AcqRel) => {
                std::mem::take(&mut *mb.replies.lock().unwrap_or_else(|p| p.into_inner()))
            }
            _ => Vec::new(),
        }
    }
}

/// Serves the waiters of every key that became ready. Called after each command by the thread
/// that ran it; cheap (one atomic load) when nothing is ready.
pub fn serve(shared: &Shared) {
    while shared.engine.ready.has_ready() {
        for (db, key) in shared.engine.ready.take() {
            while let Some(w) = shared.blocking.claim_first(shared, db, &key) {
                let mut args = Args::new();
                for a in &w.argv {
                    args.push_owned(a);
                }
                let argv = Argv::new(&[], &args);
                let mut session = Session::new(w.info.clone());
                session.db = w.db;
                session.version = w.version;
                // Not the waiter's worker: this thread is whichever made the key ready, so
                // anything the command publishes wakes its receivers' workers.
                session.worker = usize::MAX;
                session.rerun = true;
                let mut reply = Vec::new();
                commands::execute(shared, &mut session, &argv, &mut reply, unix_ms());
                // Not served when someone else emptied the key first, or when the key now holds
                // another type (redis-server serves a list waiter only from a list): keep
                // waiting, first in line.
                if session.block.is_some() || reply.starts_with(b"-WRONGTYPE") {
                    shared.blocking.requeue_front(shared, w);
                    break;
                }
                shared.blocking.deliver(w.worker, w.id, reply);
            }
        }
    }
}
