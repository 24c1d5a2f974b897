//! The event loop: every connection on one `mio::Poll`, each running closed-loop batches.
//!
//! A connection writes a batch of `pipeline` requests, reads until every reply of that batch
//! has arrived, then writes the next batch. That is how redis-benchmark and memtier drive a
//! server too, so the numbers are comparable: throughput is what N connections with P
//! requests in flight each can get, and latency is that of a request inside such a batch.
//!
//! Latency of a request = time its reply was read − time the first byte of its batch was
//! handed to the kernel. With pipeline 1 that is the round trip of one request; with pipeline
//! P every request of a batch is timed from the same start, so the k-th reply also carries the
//! time the server spent on the k−1 before it (as a client that pipelines actually sees it).
//! The loop is closed: a slow reply delays the next batch instead of queueing behind it, so
//! the percentiles do not include the queueing an open-loop client at a fixed rate would see
//! (no coordinated-omission correction).
//!
//! A multi-get (`OpMix::MGet`) is one request of the batch that names many keys: it counts
//! once in the throughput and the latency (its reply is complete when the end marker arrives)
//! and once per key in gets, hits and misses, and every hit is checked against its key.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::hist::Histogram;
use crate::proto::{self, Item, Op, Parse, ParseItem, Proto, Reply};

/// Which operations a phase issues.
#[derive(Clone, Copy, Debug)]
pub enum OpMix {
    Get,
    Set,
    /// GET with probability `get_per_million / 1e6`, SET otherwise.
    Mixed {
        get_per_million: u32,
    },
    /// Multi-gets of `keys` keys each, drawn independently (so a key may repeat).
    MGet {
        keys: usize,
    },
}

/// How keys are chosen.
#[derive(Clone, Copy, Debug)]
pub enum KeyOrder {
    /// Uniformly at random over the keyspace.
    Random,
    /// 0, 1, 2, … across all connections (the preload).
    Sequential,
}

/// One measured (or preload) run over the open connections.
#[derive(Clone, Debug)]
pub struct Phase {
    pub mix: OpMix,
    pub order: KeyOrder,
    pub pipeline: usize,
    /// Stop issuing after this many requests in total.
    pub max_requests: Option<u64>,
    /// Stop issuing new batches after this long; batches in flight are completed.
    pub duration: Option<Duration>,
    /// Whether a GET miss is an error (after a preload every key exists).
    pub misses_are_errors: bool,
}

/// What a phase did.
#[derive(Default)]
pub struct Outcome {
    /// Replies received (every request gets exactly one).
    pub completed: u64,
    /// From the first batch written to the last reply read.
    pub elapsed: Duration,
    /// Per-request latency in nanoseconds.
    pub hist: Histogram,
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
    pub sets: u64,
    /// Error replies, unexpected replies, wrong values, and misses when they count as errors.
    pub errors: u64,
    /// The first few errors, described.
    pub error_samples: Vec<String>,
}

impl Outcome {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(what);
        }
    }
}

/// Fixed parameters of the keyspace and values.
pub struct Workload {
    pub proto: Proto,
    pub keys: u32,
    pub value_size: usize,
    /// Abort a phase when no reply at all arrived for this long.
    pub stall_timeout: Duration,
    pub seed: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the replies of the batch in `Conn::batch`.
    Busy,
    /// No batch outstanding.
    Idle,
}

struct Conn {
    stream: TcpStream,
    /// The current batch's bytes; `out_pos` of them are written.
    out: Vec<u8>,
    out_pos: usize,
    /// Read buffer: unparsed bytes are `inb[in_start..in_end]`.
    inb: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// Each request of the batch, in order.
    batch: Vec<Req>,
    /// How many replies of the batch have been parsed.
    next_reply: usize,
    /// The keys of the batch's multi-gets, one after the other.
    mkeys: Vec<u32>,
    /// How many keys of the multi-get being read have been answered (hit or miss).
    msub: usize,
    sent_at: Instant,
    state: State,
}

/// One request of a batch.
#[derive(Clone, Copy, Debug)]
struct Req {
    kind: Kind,
    /// The key's number; for a multi-get, where its keys start in `Conn::mkeys`.
    key: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Single(Op),
    MGet,
}

/// Chooses operations and keys and formats them.
struct Generator {
    proto: Proto,
    keys: u32,
    value_size: usize,
    rng: u64,
    seq: u32,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Generator {
    /// xorshift64*: good enough to spread keys and cheap enough to call per request.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, phase: &Phase) -> (Op, u32) {
        let op = match phase.mix {
            OpMix::Get | OpMix::MGet { .. } => Op::Get,
            OpMix::Set => Op::Set,
            OpMix::Mixed { get_per_million } => {
                if (self.next() % 1_000_000) < u64::from(get_per_million) {
                    Op::Get
                } else {
                    Op::Set
                }
            }
        };
        (op, self.pick_key(phase))
    }

    fn pick_key(&mut self, phase: &Phase) -> u32 {
        match phase.order {
            KeyOrder::Random => (self.next() % u64::from(self.keys)) as u32,
            KeyOrder::Sequential => {
                let k = self.seq % self.keys;
                self.seq = self.seq.wrapping_add(1);
                k
            }
        }
    }

    fn encode(&mut self, op: Op, key: u32, out: &mut Vec<u8>) {
        format_key(key, &mut self.key);
        if op == Op::Set {
            fill_value(&self.key, self.value_size, &mut self.value);
        }
        proto::encode(self.proto, op, &self.key, &self.value, key, out);
    }

    /// Appends a multi-get of `n` fresh keys to `out` and their numbers to `keys`.
    fn encode_mget(&mut self, phase: &Phase, n: usize, keys: &mut Vec<u32>, out: &mut Vec<u8>) {
        proto::mget_begin(self.proto, out);
        for _ in 0..n {
            let key = self.pick_key(phase);
            format_key(key, &mut self.key);
            proto::mget_key(self.proto, &self.key, key, out);
            keys.push(key);
        }
        proto::mget_end(self.proto, out);
    }
}

/// `key:%08d`, the key names the benchmark uses everywhere.
pub fn format_key(n: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"key:");
    let start = out.len();
    proto::push_decimal(u64::from(n), out);
    let digits = out.len() - start;
    if digits < 8 {
        // Zero-pad in place: shift the digits right and fill the gap.
        let pad = 8 - digits;
        out.resize(start + 8, b'0');
        out.copy_within(start..start + digits, start + pad);
        out[start..start + pad].fill(b'0');
    }
}

/// The value stored under a key: the key's bytes repeated to `size`. Deriving it from the key
/// lets a GET check it got *its* value back, not just some value of the right length.
pub fn fill_value(key: &[u8], size: usize, out: &mut Vec<u8>) {
    out.clear();
    while out.len() < size {
        let take = key.len().min(size - out.len());
        out.extend_from_slice(&key[..take]);
    }
}

fn value_matches(key: &[u8], size: usize, data: &[u8]) -> bool {
    data.len() == size && data.chunks(key.len()).all(|chunk| chunk == &key[..chunk.len()])
}

/// The connections and the poller that drives them.
pub struct Driver {
    poll: Poll,
    conns: Vec<Conn>,
    gen: Generator,
    stall_timeout: Duration,
}

impl Driver {
    /// Opens `conns` connections to `addr`. Each is connected in blocking mode first (so a
    /// refused port fails here, plainly) and then handed to mio.
    pub fn connect(addr: SocketAddr, conns: usize, wl: &Workload) -> io::Result<Driver> {
        let poll = Poll::new()?;
        let mut list = Vec::with_capacity(conns);
        for i in 0..conns {
            let s = StdStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            let mut stream = TcpStream::from_std(s);
            poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
            list.push(Conn {
                stream,
                out: Vec::with_capacity(4096),
                out_pos: 0,
                inb: vec![0; 64 * 1024],
                in_start: 0,
                in_end: 0,
                batch: Vec::new(),
                next_reply: 0,
                mkeys: Vec::new(),
                msub: 0,
                sent_at: Instant::now(),
                state: State::Idle,
            });
        }
        Ok(Driver {
            poll,
            conns: list,
            gen: Generator {
                proto: wl.proto,
                keys: wl.keys.max(1),
                value_size: wl.value_size,
                // xorshift must not start at zero.
                rng: wl.seed | 1,
                seq: 0,
                key: Vec::with_capacity(16),
                value: Vec::with_capacity(wl.value_size),
            },
            stall_timeout: wl.stall_timeout,
        })
    }

    /// Runs one phase to its end. An `Err` means the run cannot be trusted at all (a
    /// connection dropped, the stream went out of step, or the server stalled).
    pub fn run(&mut self, phase: &Phase) -> Result<Outcome, String> {
        let mut out = Outcome::default();
        let mut events = Events::with_capacity(1024);
        let start = Instant::now();
        let deadline = phase.duration.map(|d| start + d);
        let mut budget = Budget { issued: 0, max: phase.max_requests, deadline };
        self.gen.seq = 0;
        let mut busy = 0;
        let mut last_reply = start;
        for i in 0..self.conns.len() {
            if self.start_batch(i, phase, &mut budget, start)? {
                busy += 1;
            }
        }
        while busy > 0 {
            let now = Instant::now();
            let stalled_for = now.duration_since(last_reply);
            if stalled_for >= self.stall_timeout {
                return Err(format!(
                    "no reply for {:.1} s with {busy} connections waiting: server stalled",
                    stalled_for.as_secs_f64()
                ));
            }
            match self.poll.poll(&mut events, Some(self.stall_timeout - stalled_for)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            for ev in events.iter() {
                let i = ev.token().0;
                if self.conns[i].state != State::Busy {
                    continue;
                }
                if ev.is_writable() {
                    self.flush(i)?;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    let before = out.completed;
                    let done = self.read_replies(i, phase, &mut out)?;
                    if out.completed > before {
                        last_reply = Instant::now();
                    }
                    if done {
                        self.conns[i].state = State::Idle;
                        if !self.start_batch(i, phase, &mut budget, last_reply)? {
                            busy -= 1;
                        }
                    }
                }
            }
        }
        out.elapsed = last_reply.duration_since(start);
        Ok(out)
    }

    /// Writes the next batch on connection `i` if the budget allows; false if it does not.
    fn start_batch(&mut self, i: usize, phase: &Phase, budget: &mut Budget, now: Instant) -> Result<bool, String> {
        let n = budget.take(phase.pipeline, now);
        if n == 0 {
            return Ok(false);
        }
        let c = &mut self.conns[i];
        c.out.clear();
        c.out_pos = 0;
        c.batch.clear();
        c.next_reply = 0;
        c.mkeys.clear();
        c.msub = 0;
        for _ in 0..n {
            if let OpMix::MGet { keys } = phase.mix {
                // `mkeys` holds at most pipeline x keys entries, both bounded on the command line.
                let first = c.mkeys.len() as u32;
                self.gen.encode_mget(phase, keys, &mut c.mkeys, &mut c.out);
                c.batch.push(Req { kind: Kind::MGet, key: first });
            } else {
                let (op, key) = self.gen.pick(phase);
                self.gen.encode(op, key, &mut c.out);
                c.batch.push(Req { kind: Kind::Single(op), key });
            }
        }
        c.state = State::Busy;
        c.sent_at = Instant::now();
        self.flush(i)?;
        Ok(true)
    }

    /// Writes what is left of connection `i`'s batch until done or the socket is full (then a
    /// writable event brings us back).
    fn flush(&mut self, i: usize) -> Result<(), String> {
        let c = &mut self.conns[i];
        while c.out_pos < c.out.len() {
            match c.stream.write(&c.out[c.out_pos..]) {
                Ok(0) => return Err("connection closed while writing".into()),
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }

    /// Reads and accounts for replies on connection `i`; true once the whole batch is in.
    fn read_replies(&mut self, i: usize, phase: &Phase, out: &mut Outcome) -> Result<bool, String> {
        let proto = self.gen.proto;
        let value_size = self.gen.value_size;
        let key_buf = &mut self.gen.key;
        let c = &mut self.conns[i];
        loop {
            if c.in_end == c.inb.len() {
                if c.in_start > 0 {
                    c.inb.copy_within(c.in_start..c.in_end, 0);
                    c.in_end -= c.in_start;
                    c.in_start = 0;
                } else {
                    // One reply larger than the buffer (big values): grow.
                    let len = c.inb.len();
                    c.inb.resize(len * 2, 0);
                }
            }
            let space = c.inb.len() - c.in_end;
            let n = match c.stream.read(&mut c.inb[c.in_end..]) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            c.in_end += n;
            // One clock read per read(2): replies that arrived together share a timestamp.
            let latency = c.sent_at.elapsed().as_nanos() as u64;
            while c.next_reply < c.batch.len() {
                let req = c.batch[c.next_reply];
                let buf = &c.inb[c.in_start..c.in_end];
                let (used, done) = match req.kind {
                    Kind::Single(op) => match proto::parse(proto, buf, req.key) {
                        Parse::Complete(reply, used) => {
                            account(op, req.key, reply, phase, value_size, key_buf, out);
                            (used, true)
                        }
                        Parse::Incomplete => break,
                        Parse::Invalid(why) => return Err(format!("protocol error: {why}")),
                    },
                    Kind::MGet => match proto::parse_mget_item(proto, buf) {
                        ParseItem::Complete(item, used) => {
                            let OpMix::MGet { keys: n } = phase.mix else {
                                return Err("multi-get reply outside a multi-get phase".into());
                            };
                            let first = req.key as usize;
                            let keys = &c.mkeys[first..first + n];
                            let done = account_item(proto, item, keys, &mut c.msub, phase, value_size, key_buf, out)
                                .map_err(|why| format!("protocol error in a multi-get: {why}"))?;
                            (used, done)
                        }
                        ParseItem::Incomplete => break,
                        ParseItem::Invalid(why) => return Err(format!("protocol error: {why}")),
                    },
                };
                c.in_start += used;
                if done {
                    out.hist.record(latency);
                    out.completed += 1;
                    c.next_reply += 1;
                    c.msub = 0;
                }
            }
            if c.in_start == c.in_end {
                c.in_start = 0;
                c.in_end = 0;
            }
            if c.next_reply == c.batch.len() {
                if c.in_end != 0 {
                    let extra = &c.inb[c.in_start..c.in_end];
                    return Err(format!(
                        "{} bytes after the last reply of a batch: {}",
                        extra.len(),
                        proto::show(extra)
                    ));
                }
                return Ok(true);
            }
            if n < space {
                // The socket is drained: with edge-triggered polling the next bytes to arrive
                // raise a new event, so the extra read(2) that would return EAGAIN is skipped.
                return Ok(false);
            }
        }
    }
}

/// Checks one reply against the request it answers.
fn account(
    op: Op,
    key: u32,
    reply: Reply<'_>,
    phase: &Phase,
    value_size: usize,
    key_buf: &mut Vec<u8>,
    out: &mut Outcome,
) {
    let name = |key_buf: &mut Vec<u8>| {
        format_key(key, key_buf);
        String::from_utf8_lossy(key_buf).into_owned()
    };
    match op {
        Op::Get => out.gets += 1,
        Op::Set => out.sets += 1,
    }
    match (op, reply) {
        (Op::Get, Reply::Value(data)) => {
            out.hits += 1;
            format_key(key, key_buf);
            if !value_matches(key_buf, value_size, data) {
                let k = name(key_buf);
                out.error(format!("GET {k}: wrong value {} ({} bytes)", proto::show(data), data.len()));
            }
        }
        (Op::Get, Reply::Miss) => {
            out.misses += 1;
            if phase.misses_are_errors {
                let k = name(key_buf);
                out.error(format!("GET {k}: miss after the preload"));
            }
        }
        (Op::Set, Reply::Stored) => {}
        (_, Reply::Error(line)) => {
            let k = name(key_buf);
            out.error(format!("{op:?} {k}: server error {}", proto::show(line)));
        }
        (_, other) => {
            let k = name(key_buf);
            out.error(format!("{op:?} {k}: unexpected reply {other:?}"));
        }
    }
}

/// Accounts for one item of a multi-get's reply against the multi-get's `keys`, of which
/// `*answered` have had their answer. True when the multi-get is complete. An `Err` means the
/// stream is out of step: a hit for a key not asked for (or not in order), more answers than
/// keys, or an end marker before every key was answered where misses are explicit.
#[allow(clippy::too_many_arguments)]
fn account_item(
    proto: Proto,
    item: Item<'_>,
    keys: &[u32],
    answered: &mut usize,
    phase: &Phase,
    value_size: usize,
    key_buf: &mut Vec<u8>,
    out: &mut Outcome,
) -> Result<bool, String> {
    let miss = |key: u32, key_buf: &mut Vec<u8>, out: &mut Outcome| {
        out.gets += 1;
        out.misses += 1;
        if phase.misses_are_errors {
            format_key(key, key_buf);
            out.error(format!("multi-get {}: miss after the preload", String::from_utf8_lossy(key_buf)));
        }
    };
    match item {
        Item::Hit { key: Some(name), tag, data } => {
            // Text and binary leave misses out: find the key this hit answers, in order.
            let mut found = None;
            for (j, &k) in keys.iter().enumerate().skip(*answered) {
                format_key(k, key_buf);
                if key_buf.as_slice() == name {
                    found = Some((j, k));
                    break;
                }
            }
            let Some((j, k)) = found else {
                return Err(format!("a hit for {}, which is not among the keys still unanswered", proto::show(name)));
            };
            if tag.is_some_and(|t| t != k) {
                return Err(format!("hit for {} carries opaque {tag:?}, its request {k}", proto::show(name)));
            }
            for &skipped in &keys[*answered..j] {
                miss(skipped, key_buf, out);
            }
            *answered = j + 1;
            hit(k, data, value_size, key_buf, out);
            Ok(false)
        }
        Item::Hit { key: None, data, .. } => {
            let &k = keys.get(*answered).ok_or("a value after every key was answered")?;
            *answered += 1;
            hit(k, data, value_size, key_buf, out);
            Ok(false)
        }
        Item::Miss => {
            let &k = keys.get(*answered).ok_or("a miss after every key was answered")?;
            *answered += 1;
            miss(k, key_buf, out);
            Ok(false)
        }
        Item::End => {
            if proto == Proto::McMeta && *answered != keys.len() {
                return Err(format!("end marker after {} answers to {} keys", *answered, keys.len()));
            }
            for &k in &keys[*answered..] {
                miss(k, key_buf, out);
            }
            *answered = keys.len();
            Ok(true)
        }
        Item::Error(what) | Item::Other(what) => {
            out.error(format!("multi-get: unexpected reply {}", proto::show(what)));
            // A text error line replaces the whole reply; elsewhere it stands for one key.
            if proto == Proto::McText {
                return Ok(true);
            }
            *answered += 1;
            Ok(false)
        }
    }
}

/// Accounts for one multi-get hit on key number `key`.
fn hit(key: u32, data: &[u8], value_size: usize, key_buf: &mut Vec<u8>, out: &mut Outcome) {
    out.gets += 1;
    out.hits += 1;
    format_key(key, key_buf);
    if !value_matches(key_buf, value_size, data) {
        let k = String::from_utf8_lossy(key_buf).into_owned();
        out.error(format!("multi-get {k}: wrong value {} ({} bytes)", proto::show(data), data.len()));
    }
}

/// How many more requests may be issued.
struct Budget {
    issued: u64,
    max: Option<u64>,
    deadline: Option<Instant>,
}

impl Budget {
    fn take(&mut self, want: usize, now: Instant) -> usize {
        if self.deadline.is_some_and(|d| now >= d) {
            return 0;
        }
        let left = self.max.map_or(u64::MAX, |m| m.saturating_sub(self.issued));
        let n = (want as u64).min(left) as usize;
        self.issued += n as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_to_eight_digits() {
        let mut k = Vec::new();
        for (n, want) in
            [(0, "key:00000000"), (42, "key:00000042"), (12_345_678, "key:12345678"), (123_456_789, "key:123456789")]
        {
            format_key(n, &mut k);
            assert_eq!(k, want.as_bytes());
        }
    }

    #[test]
    fn values_derive_from_keys_and_verify() {
        let mut v = Vec::new();
        fill_value(b"key:00000001", 32, &mut v);
        assert_eq!(v, b"key:00000001key:00000001key:0000");
        assert!(value_matches(b"key:00000001", 32, &v));
        assert!(!value_matches(b"key:00000002", 32, &v));
        assert!(!value_matches(b"key:00000001", 32, &v[..31]));
        fill_value(b"key:00000001", 5, &mut v);
        assert_eq!(v, b"key:0");
        fill_value(b"key:00000001", 0, &mut v);
        assert!(v.is_empty());
        assert!(value_matches(b"key:00000001", 0, b""));
    }

    #[test]
    fn budget_stops_at_the_count() {
        let mut b = Budget { issued: 0, max: Some(20), deadline: None };
        let now = Instant::now();
        assert_eq!([b.take(16, now), b.take(16, now), b.take(16, now)], [16, 4, 0]);
    }

    #[test]
    fn budget_stops_at_the_deadline() {
        let now = Instant::now();
        let mut b = Budget { issued: 0, max: None, deadline: Some(now) };
        assert_eq!(b.take(16, now), 0);
    }
}
