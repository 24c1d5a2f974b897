//! The Redis command table and dispatcher.
//!
//! Every command is one [`Spec`]: name, arity (positive = exact, negative = at least), flags,
//! key positions, documentation for COMMAND DOCS, and a handler. Each family module (strings,
//! keys, connection, server, …) exports its specs as `COMMANDS`; [`table`] gathers them into the
//! one lookup table from which arity errors, COMMAND / COMMAND INFO / COMMAND DOCS and key
//! extraction all derive. A spec's argument syntax ([`arg::Arg`], set with [`Spec::args`]) is
//! what COMMAND DOCS reports and redis-cli turns into typing hints. Container commands (CONFIG, CLIENT, COMMAND, OBJECT) carry their
//! subcommands as specs of their own, named `container|sub` as redis-server names them.
//!
//! Handlers follow one rule: validate everything, and return `Err` *before* writing any reply;
//! once a handler writes, it writes exactly one complete reply. `execute` turns an `Err` into
//! the error reply, worded as redis-server words it.

pub mod acl;
pub mod arg;
pub mod bitmaps;
pub mod category;
pub mod connection;
pub mod hashes;
pub mod hll;
pub mod introspect;
pub mod keys;
pub mod lists;
pub mod meta;
pub mod multi;
pub mod notify;
pub mod persistence;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod strings;
pub mod tracking;
pub mod zsets;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use cachette_resp::{Args, Encoder, Version};

use crate::engine::Engine;
use crate::server::pubsub as server_pubsub;
use crate::server::{ClientInfo, Shared};
use arg::Arg;

/// Command flags, as COMMAND INFO lists them.
pub mod flags {
    /// May modify the keyspace.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory use (refused when out of memory).
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/sub related.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 6;
    /// Allowed while loading the dataset.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a replica with stale data.
    pub const STALE: u32 = 1 << 8;
    /// Not shown by MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 9;
    /// Not logged by SLOWLOG.
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    /// O(1) or O(log N).
    pub const FAST: u32 = 1 << 11;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 12;
    /// May replicate even when read-only (e.g. PUBLISH).
    pub const MAY_REPLICATE: u32 = 1 << 13;
    /// Does not touch the LRU of the keys it reads.
    pub const NO_MULTI: u32 = 1 << 14;
    /// Allowed while the server is busy or paused.
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// Its keys are found by reading its arguments (a `numkeys` count), not by position alone.
    pub const MOVABLE_KEYS: u32 = 1 << 16;
    /// Refused while a replica loads its data asynchronously (SAVE, BGSAVE, BGREWRITEAOF); shown
    /// only.
    pub const NO_ASYNC_LOADING: u32 = 1 << 17;

    /// (flag, name) pairs in the order redis-server prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (MOVABLE_KEYS, "movablekeys"),
    ];
}

/// A command handler. See the module documentation for the reply rule.
pub type Handler = fn(&mut Ctx<'_>, &Argv<'_>) -> Result<(), CmdError>;

/// One entry of the command table.
pub struct Spec {
    /// Lower-case name (`get`, or `config|get` for a subcommand).
    pub name: &'static str,
    /// Positive: exact argument count (name included); negative: at least `-arity`.
    pub arity: i32,
    /// Bit set of [`flags`].
    pub flags: u32,
    /// Position of the first key (0: none).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// COMMAND DOCS group (`string`, `generic`, `connection`, `server`, …).
    pub group: &'static str,
    /// One-line summary for COMMAND DOCS.
    pub summary: &'static str,
    /// Redis version that introduced the command.
    pub since: &'static str,
    /// Time complexity for COMMAND DOCS.
    pub complexity: &'static str,
    /// The implementation (unused for containers, which dispatch to `subcommands`).
    pub handler: Handler,
    /// Subcommands of a container command.
    pub subcommands: &'static [Spec],
    /// The syntax after the name, as COMMAND DOCS `arguments` (empty: none, or a container).
    pub args: &'static [Arg],
    /// Position of a `numkeys` argument followed by that many keys (0: none).
    pub numkeys_at: u8,
}

impl Spec {
    /// Sets the argument syntax; the table's one-line entries end in `.args(SET_ARGS)`.
    pub const fn args(self, args: &'static [Arg]) -> Spec {
        Spec { args, ..self }
    }

    /// Marks a command whose keys follow a `numkeys` argument at position `at` (LMPOP,
    /// ZUNIONSTORE, …); COMMAND INFO then shows `movablekeys` and COMMAND GETKEYS finds them.
    pub const fn numkeys(self, at: u8) -> Spec {
        Spec { numkeys_at: at, flags: self.flags | flags::MOVABLE_KEYS, ..self }
    }

    /// Every key position of one command line: the fixed ones of [`Spec::key_positions`] and
    /// those a `numkeys` argument announces. `arg(i)` gives argument `i`.
    pub fn all_key_positions<'a>(&self, argc: usize, arg: impl Fn(usize) -> &'a [u8]) -> Vec<usize> {
        let mut keys: Vec<usize> = self.key_positions(argc).collect();
        if self.name == "sort" {
            keys.extend(sort_store_key(argc, &arg));
        }
        let at = usize::from(self.numkeys_at);
        if at > 0 && at < argc {
            if let Some(n) = crate::types::string::parse_u64(arg(at)) {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                keys.extend((at + 1..argc).take(n));
            }
        }
        keys
    }

    /// True when `argc` arguments satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = i64::from(self.arity);
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }

    /// True when the command is flagged `f`.
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Positions of the keys in a command line of `argc` arguments (COMMAND GETKEYS, locking).
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 { argc as i64 + i64::from(self.last_key) } else { i64::from(self.last_key) };
        let last = if first == 0 { 0 } else { last.max(0) as usize };
        let step = self.step.max(1) as usize;
        (first..=last).step_by(step).filter(move |&i| first > 0 && i < argc)
    }
}

/// The STORE destination of `SORT key …`, found as redis-server's `sortGetKeys` finds it: LIMIT
/// skips two arguments, GET and BY one, the last `STORE x` wins, and the word after STORE is
/// taken even when it is an option name, so COMMAND GETKEYS and ACL key checks agree with it.
fn sort_store_key<'a>(argc: usize, arg: &impl Fn(usize) -> &'a [u8]) -> Option<usize> {
    let mut store = None;
    let mut i = 2;
    while i < argc {
        let a = arg(i);
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argc {
            store = Some(i + 1);
        }
        i += 1;
    }
    store
}

/// Builds a spec in one line; the family modules' tables are lists of these.
#[allow(clippy::too_many_arguments)]
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    complexity: &'static str,
    summary: &'static str,
    handler: Handler,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        summary,
        since,
        complexity,
        handler,
        subcommands: &[],
        args: &[],
        numkeys_at: 0,
    }
}

/// A container command (CONFIG, CLIENT, …) with its subcommands.
pub const fn container(
    name: &'static str,
    arity: i32,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    subcommands: &'static [Spec],
) -> Spec {
    Spec {
        name,
        arity,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        group,
        summary,
        since,
        complexity: "Depends on subcommand.",
        handler: |_, _| Ok(()),
        subcommands,
        args: &[],
        numkeys_at: 0,
    }
}

/// Why a command failed; [`CmdError::message`] words it as redis-server does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// The key holds another type.
    WrongType,
    /// An argument or value is not a 64-bit integer.
    NotInteger,
    /// An argument or value is not a float.
    NotFloat,
    /// Generic syntax error.
    Syntax,
    /// INCR/DECR overflow.
    Overflow,
    /// The key does not exist (RENAME and friends).
    NoSuchKey,
    /// Database index out of range.
    DbIndex,
    /// Any other error: the whole message, prefix included (`ERR …`, `NOPROTO …`).
    Msg(Cow<'static, str>),
}

impl CmdError {
    /// An `ERR`-prefixed message.
    pub fn err(msg: impl Into<Cow<'static, str>>) -> CmdError {
        CmdError::Msg(msg.into())
    }

    /// The reply text without the leading `-`.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            CmdError::WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
            CmdError::NotInteger => "ERR value is not an integer or out of range".into(),
            CmdError::NotFloat => "ERR value is not a valid float".into(),
            CmdError::Syntax => "ERR syntax error".into(),
            CmdError::Overflow => "ERR increment or decrement would overflow".into(),
            CmdError::NoSuchKey => "ERR no such key".into(),
            CmdError::DbIndex => "ERR DB index is out of range".into(),
            CmdError::Msg(m) => m.clone(),
        }
    }
}

/// The arguments of one command, borrowed from the connection's read buffer.
pub struct Argv<'a> {
    buf: &'a [u8],
    args: &'a Args,
}

impl<'a> Argv<'a> {
    /// Wraps parsed arguments and the buffer they point into.
    pub fn new(buf: &'a [u8], args: &'a Args) -> Argv<'a> {
        Argv { buf, args }
    }
    /// Number of arguments, command name included.
    pub fn len(&self) -> usize {
        self.args.len()
    }
    /// True when there are no arguments (never, for a dispatched command).
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
    /// Argument `i` (0 is the command name). Panics when out of range: handlers index only
    /// below the arity the table guarantees, or after checking `len`.
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.args.get(self.buf, i)
    }
    /// Arguments `from..`.
    pub fn rest(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        (from..self.len()).map(move |i| self.get(i))
    }
}

/// Per-connection protocol state a command may read or change.
pub struct Session {
    /// Selected database.
    pub db: usize,
    /// Negotiated RESP version.
    pub version: Version,
    /// Close the connection once this reply is written (QUIT).
    pub close_after_reply: bool,
    /// The record other threads see (name, db, last command …).
    pub info: Arc<ClientInfo>,
    /// Set by a blocking command (BLPOP …) that found nothing to serve, instead of a reply:
    /// the connection then blocks until a key is ready or the deadline passes.
    pub block: Option<BlockRequest>,
    /// The worker thread that owns the connection (pub/sub delivers to it).
    pub worker: usize,
    /// Pub/sub subscriptions.
    pub subs: pubsub::Subscriptions,
    /// Client-side caching state (CLIENT TRACKING); None when off.
    pub tracking: Option<tracking::TrackState>,
    /// Pushes for this client produced by its own command (a PUBLISH or keyspace event it is
    /// subscribed to), on their way into its output: [`Ctx::flush_pushes`] appends them where
    /// the command announces them; the `expired` events of keys a read found expired are
    /// placed before its reply by `execute`.
    pub pushes: Vec<u8>,
    /// CLIENT REPLY state.
    pub reply: ReplyMode,
    /// In MONITOR mode: keyspace commands are refused.
    pub monitor: bool,
    /// A blocked command run again when its key is ready: MONITOR saw it the first time.
    pub rerun: bool,
    /// MULTI/EXEC state: queued commands and watched keys.
    pub tx: multi::Transaction,
    /// The ACL user it runs as; None is the default user.
    pub user: Option<Arc<crate::acl::User>>,
    /// Authenticated (by AUTH, or at connection time because the default user had `nopass`).
    pub authenticated: bool,
}

/// CLIENT REPLY ON / OFF / SKIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent.
    On,
    /// Replies are dropped until CLIENT REPLY ON.
    Off,
    /// The next command's reply is dropped.
    SkipNext,
}

impl Session {
    /// A fresh session: db 0, RESP2.
    pub fn new(info: Arc<ClientInfo>) -> Session {
        Session {
            db: 0,
            version: Version::Resp2,
            close_after_reply: false,
            info,
            block: None,
            reply: ReplyMode::On,
            monitor: false,
            rerun: false,
            tx: Default::default(),
            user: None,
            authenticated: false,
            worker: 0,
            subs: Default::default(),
            tracking: None,
            pushes: Vec::new(),
        }
    }
}

/// What a blocking command waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRequest {
    /// The keys whose readiness wakes it, in the command's order.
    pub keys: Vec<Vec<u8>>,
    /// Unix ms when it gives up; None waits forever (timeout 0).
    pub deadline: Option<u64>,
    /// What it answers on timeout.
    pub on_timeout: TimeoutReply,
}

/// The reply a blocking command gives when its timeout passes. redis-server 7.0 answers a null
/// array (`*-1` in RESP2, `_` in RESP3) for every blocking command, BLMOVE and BRPOPLPUSH
/// included; the type stays an enum so a command with another timeout reply has a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutReply {
    /// Null array.
    NullArray,
}

/// Blocks the client on `keys` instead of replying: the server re-runs the command when one of
/// them is stored to, and answers the timeout reply at `deadline` (see [`BlockRequest`]).
pub fn block_on(ctx: &mut Ctx<'_>, keys: &[crate::engine::Hashed<'_>], deadline: Option<u64>) {
    let keys = keys.iter().map(|k| k.key.to_vec()).collect();
    ctx.session.block = Some(BlockRequest { keys, deadline, on_timeout: TimeoutReply::NullArray });
}

/// Parses a blocking command's timeout (seconds, decimals allowed, 0 = forever) into an
/// absolute deadline, with redis-server's errors.
pub fn parse_timeout(arg: &[u8], now: u64) -> Result<Option<u64>, CmdError> {
    let secs = crate::types::string::parse_f64(arg)
        .ok_or_else(|| CmdError::err("ERR timeout is not a float or out of range"))?;
    // redis-server converts seconds*1000 to a 64-bit integer by truncation; a value too large
    // for it (inf included) comes out negative there, hence the same error here.
    let ms = (secs * 1000.0).trunc();
    if !(0.0..9.2e18).contains(&ms) {
        return Err(CmdError::err("ERR timeout is negative"));
    }
    Ok((ms > 0.0).then(|| now.saturating_add(ms as u64)))
}

/// What a handler works with.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub shared: &'a Shared,
    /// This connection's session.
    pub session: &'a mut Session,
    /// Where the reply goes.
    pub out: Encoder<'a>,
    /// The engine clock for this command (unix ms).
    pub now: u64,
}

impl<'a> Ctx<'a> {
    /// The keyspace (`'static`: see [`Shared::engine`]).
    pub fn engine(&self) -> &'static Engine {
        self.shared.engine
    }

    /// Announces keyspace event `event` of `class` (a [`notify`] class) on `key` in the
    /// session's database. Costs one relaxed load when notifications of `class` are off.
    #[inline]
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        if self.shared.notify_flags.load(Ordering::Relaxed) & class != 0 {
            self.notify_in(class, event, self.session.db, key);
        }
    }

    /// [`Ctx::notify`] for the commands redis-server announces *after* their reply (LPUSH,
    /// HSET, ZADD, EXPIRE, …): a subscriber that is the client itself gets the push after the
    /// reply, whatever order the handler writes them in.
    #[inline]
    pub fn notify_after(&mut self, class: u32, event: &str, key: &[u8]) {
        if self.shared.notify_flags.load(Ordering::Relaxed) & class != 0 {
            self.announce(class, event, self.session.db, key);
        }
    }

    /// True when events of `class` are announced (to skip work only they need).
    #[inline]
    pub fn notifies(&self, class: u32) -> bool {
        self.shared.notify_flags.load(Ordering::Relaxed) & class != 0
    }

    /// [`Ctx::notify`] for a key of another database (MOVE, COPY … DB).
    pub fn notify_in(&mut self, class: u32, event: &str, db: usize, key: &[u8]) {
        if self.shared.notify_flags.load(Ordering::Relaxed) & class == 0 {
            return;
        }
        self.announce(class, event, db, key);
        self.flush_pushes();
    }

    /// Publishes one event; the client's own pushes wait in `session.pushes`.
    fn announce(&mut self, class: u32, event: &str, db: usize, key: &[u8]) {
        // Keys this command found expired, or created, are announced first and at once, as
        // redis-server announces them from its lookups (before the reply, even for commands
        // whose own event follows the reply).
        let id = self.session.info.id;
        if notify::pending(self.shared) {
            notify::flush_expired(
                self.shared,
                Some(server_pubsub::Publisher { id, worker: self.session.worker, out: &mut self.session.pushes }),
            );
            self.flush_pushes();
        }
        let me = Some(server_pubsub::Publisher { id, worker: self.session.worker, out: &mut self.session.pushes });
        notify::emit(self.shared, class, event, db, key, me);
    }

    /// Writes this client's own pushes into its output now: an event reaches its subscriber
    /// where the command announces it, before or after the reply as in redis-server (SET … GET
    /// and GETDEL reply first, most writes announce first).
    pub fn flush_pushes(&mut self) {
        if !self.session.pushes.is_empty() {
            self.out.raw(&self.session.pushes);
            self.session.pushes.clear();
        }
    }
}

struct Table {
    by_name: HashMap<&'static str, &'static Spec>,
    all: Vec<&'static Spec>,
    /// Every spec, subcommands included: the index of a spec here is its row in the statistics.
    flat: Vec<&'static Spec>,
    /// (address of a spec, its index in `flat`), sorted by address.
    by_addr: Vec<(usize, usize)>,
}

fn families() -> [&'static [Spec]; 17] {
    [
        connection::COMMANDS,
        strings::COMMANDS,
        bitmaps::COMMANDS,
        keys::COMMANDS,
        lists::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        hll::COMMANDS,
        sort::COMMANDS,
        pubsub::COMMANDS,
        multi::COMMANDS,
        server::COMMANDS,
        introspect::COMMANDS,
        acl::COMMANDS,
        persistence::COMMANDS,
        scripting::COMMANDS,
    ]
}

fn table_ref() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut by_name = HashMap::new();
        let mut all = Vec::new();
        let mut flat = Vec::new();
        for fam in families() {
            for s in fam {
                by_name.insert(s.name, s);
                all.push(s);
                flat.push(s);
                flat.extend(s.subcommands.iter());
            }
        }
        let mut by_addr: Vec<(usize, usize)> =
            flat.iter().enumerate().map(|(i, s)| (*s as *const Spec as usize, i)).collect();
        by_addr.sort_unstable();
        Table { by_name, all, flat, by_addr }
    })
}

/// Number of specs, subcommands included (rows of the per-command statistics).
pub fn spec_count() -> usize {
    table_ref().flat.len()
}

/// Every spec, subcommands included, in the order of [`spec_index`].
pub fn all_specs() -> &'static [&'static Spec] {
    &table_ref().flat
}

/// The statistics row of `spec` (a spec of the table; anything else maps to row 0).
pub fn spec_index(spec: &'static Spec) -> usize {
    let t = table_ref();
    let addr = spec as *const Spec as usize;
    t.by_addr.binary_search_by_key(&addr, |&(a, _)| a).map(|i| t.by_addr[i].1).unwrap_or(0)
}

/// Every top-level command, in table order.
pub fn table() -> &'static [&'static Spec] {
    &table_ref().all
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    table_ref().by_name.get(lower).copied()
}

/// Finds a subcommand of `container`, case-insensitively.
pub fn lookup_sub(container: &'static Spec, sub: &[u8]) -> Option<&'static Spec> {
    container.subcommands.iter().find(|s| {
        let short = s.name.split('|').nth(1).unwrap_or(s.name);
        short.as_bytes().eq_ignore_ascii_case(sub)
    })
}

/// Printable excerpt of client bytes for error messages, as redis-server quotes them.
///
/// redis-server formats arguments with `%.Ns`, so a NUL byte ends the excerpt.
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len()).min(max);
    let b = &bytes[..end];
    String::from_utf8_lossy(b).replace(['\r', '\n'], " ")
}

fn unknown_command(argv: &Argv<'_>) -> CmdError {
    let mut args = String::new();
    for a in argv.rest(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push('\'');
        args.push_str(&excerpt(a, room));
        args.push_str("' ");
    }
    CmdError::err(format!("ERR unknown command '{}', with args beginning with: {}", excerpt(argv.get(0), 128), args))
}

/// Resolves `argv` to the spec that runs it (following container commands), or the error
/// redis-server gives for an unknown command, unknown subcommand or wrong arity.
pub fn resolve(argv: &Argv<'_>) -> Result<&'static Spec, CmdError> {
    let Some(top) = lookup(argv.get(0)) else {
        return Err(unknown_command(argv));
    };
    if top.subcommands.is_empty() {
        if !top.arity_ok(argv.len()) {
            return Err(CmdError::err(format!("ERR wrong number of arguments for '{}' command", top.name)));
        }
        return Ok(top);
    }
    if argv.len() < 2 {
        // A container whose arity admits the bare name (COMMAND) runs its own handler.
        if top.arity_ok(1) {
            return Ok(top);
        }
        return Err(CmdError::err(format!("ERR wrong number of arguments for '{}' command", top.name)));
    }
    let Some(sub) = lookup_sub(top, argv.get(1)) else {
        return Err(CmdError::err(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            excerpt(argv.get(1), 128),
            top.name.to_ascii_uppercase()
        )));
    };
    if !sub.arity_ok(argv.len()) {
        return Err(CmdError::err(format!("ERR wrong number of arguments for '{}' command", sub.name)));
    }
    Ok(sub)
}

/// The command `argv` would run, when it names one, even if its arity is wrong (for the
/// `rejected_calls` count).
fn named_spec(argv: &Argv<'_>) -> Option<&'static Spec> {
    let top = lookup(argv.get(0))?;
    if top.subcommands.is_empty() || argv.len() < 2 {
        return Some(top);
    }
    lookup_sub(top, argv.get(1))
}

/// True when a CLIENT PAUSE in force at `now` holds `argv` back: every command under PAUSE ALL;
/// under PAUSE WRITE, writes (and commands that may replicate; inside MULTI too, before they are
/// queued, as redis-server holds them) and an EXEC with such commands queued.
pub fn must_wait(shared: &Shared, session: &Session, argv: &Argv<'_>, now: u64) -> bool {
    match shared.pause.state(now) {
        None => false,
        Some(true) => true,
        Some(false) => resolve(argv).is_ok_and(|s| {
            if s.name == "exec" {
                session.tx.queued_writes()
            } else {
                s.has(flags::WRITE | flags::MAY_REPLICATE)
            }
        }),
    }
}

/// Runs one command and appends its reply to `out`: refuses what must be refused (unknown
/// command, arity, MONITOR mode, OOM) and otherwise queues it (MULTI) or [`call`]s it. CLIENT
/// REPLY OFF / SKIP drop the output here, whatever produced it.
pub fn execute(shared: &Shared, session: &mut Session, argv: &Argv<'_>, out: &mut Vec<u8>, now: u64) {
    shared.counters.commands_processed.fetch_add(1, Ordering::Relaxed);
    let mark = out.len();
    let skip_this = session.reply == ReplyMode::SkipNext;
    if skip_this {
        session.reply = ReplyMode::On;
    }
    dispatch(shared, session, argv, out, now);
    // CLIENT REPLY OFF and SKIP answer nothing themselves; ON answers even when replies were off.
    if skip_this || session.reply == ReplyMode::Off {
        out.truncate(mark);
    }
}

/// A refused command's error: counted as a rejected call of the command it names (INFO
/// commandstats) and by its code (errorstats).
fn reject(shared: &Shared, session: &mut Session, argv: &Argv<'_>, out: &mut Vec<u8>, e: CmdError) {
    if let Some(s) = named_spec(argv) {
        shared.stats.rejected(spec_index(s));
    }
    let e = multi::refused(session, argv, e);
    let msg = e.message();
    shared.stats.error(&msg);
    Encoder::new(out, session.version).error(msg.as_bytes());
}

fn dispatch(shared: &Shared, session: &mut Session, argv: &Argv<'_>, out: &mut Vec<u8>, now: u64) {
    let resolved = resolve(argv).and_then(|spec| {
        if session.monitor && spec.has(flags::WRITE | flags::READONLY | flags::MAY_REPLICATE) {
            return Err(CmdError::err("ERR Replica can't interact with the keyspace"));
        }
        Ok(spec)
    });
    let spec = match resolved {
        Ok(s) => s,
        Err(e) => return reject(shared, session, argv, out, e),
    };
    // Authentication and ACL permissions; refused inside MULTI at queue time, as redis-server.
    if let Err(e) = acl::admit(shared, session, spec, argv) {
        return reject(shared, session, argv, out, e);
    }
    // Over maxmemory, evict first (any command, as redis-server does); when nothing could be
    // evicted, refuse the commands that may grow memory and let the rest (reads, deletes) run.
    // Inside MULTI almost everything is refused (a queue grows memory too), and it aborts the
    // transaction.
    if shared.engine.limits.over_limit()
        && shared.engine.make_room(now).is_err()
        && multi::refused_on_oom(session, spec)
    {
        return reject(shared, session, argv, out, CmdError::err(OOM_ERROR));
    }
    // A failed background save stops writes (and PING, as redis-server does) until a save
    // succeeds, when save points and stop-writes-on-bgsave-error are on.
    if (spec.has(flags::WRITE) || spec.name == "ping") && shared.persist.writes_refused(&shared.config) {
        return reject(shared, session, argv, out, CmdError::err(crate::persist::MISCONF_ERROR));
    }
    if session.version == Version::Resp2 && session.subs.active() && !pubsub::allowed_when_subscribed(spec.name) {
        return reject(shared, session, argv, out, pubsub::not_allowed_when_subscribed(spec.name));
    }
    if multi::queue(shared, session, spec, argv, out) {
        return;
    }
    call(shared, session, spec, argv, out, now);
}

/// Runs a resolved command (directly, or queued by MULTI and run by EXEC) and appends its
/// reply to `out`; times and counts it (INFO commandstats, errorstats, latencystats) and hands
/// it to SLOWLOG, the latency monitor and MONITOR.
pub fn call(shared: &Shared, session: &mut Session, spec: &'static Spec, argv: &Argv<'_>, out: &mut Vec<u8>, now: u64) {
    let version = session.version;
    let info = session.info.clone();
    // Published before running, so CLIENT LIST shows itself as `cmd=client|list` like Redis.
    if let Ok(mut c) = info.last_cmd.try_lock() {
        *c = spec.name;
    };
    let out_start = out.len();
    // A write command's effect is its command line unless the handler says otherwise; it
    // reaches the feed from the guard that saw the change (see `engine::effects`).
    let logged = spec.has(flags::WRITE) && shared.engine.feed.enabled();
    if logged {
        crate::engine::effects::begin(session.db, argv.rest(0));
    }
    let mut ctx = Ctx { shared, session, out: Encoder::new(out, version), now };
    let clock = &shared.stats.clock;
    let start = clock.raw();
    let result = (spec.handler)(&mut ctx, argv);
    let nanos = clock.delta_as_nanos(start, clock.raw());
    let failed = match result {
        Ok(()) => false,
        Err(e) => {
            let msg = e.message();
            ctx.out.error(msg.as_bytes());
            shared.stats.error(&msg);
            true
        }
    };
    if session.tracking.is_some() || shared.tracking.is_active() {
        tracking::after_command(shared, session, spec, argv);
    }
    // Pushes announced after the reply (see `Ctx::notify_after`), invalidations included.
    out.append(&mut session.pushes);
    if notify::pending(shared) {
        // Keys the command met expired, when it announced nothing itself (a read): redis-server
        // announces them as it looks the key up, before the reply.
        notify::flush_expired(
            shared,
            Some(server_pubsub::Publisher { id: info.id, worker: session.worker, out: &mut session.pushes }),
        );
        out.splice(out_start..out_start, session.pushes.drain(..));
    }
    if logged {
        crate::engine::effects::end();
    }
    // A command that blocked is counted when it is served, as redis-server counts it.
    if session.block.is_none() {
        shared.stats.record(spec_index(spec), nanos, failed);
    }
    after_call(shared, session, spec, argv, nanos);
}

/// The slow log, the latency monitor and MONITOR, after a command ran for `nanos`.
fn after_call(shared: &Shared, session: &Session, spec: &'static Spec, argv: &Argv<'_>, nanos: u64) {
    let micros = nanos / 1000;
    let slower = shared.stats.slower_than();
    // A command that blocked is logged when it is served, as redis-server does.
    if slower >= 0 && micros >= slower.unsigned_abs() && !spec.has(flags::SKIP_SLOWLOG) && session.block.is_none() {
        let info = &session.info;
        let entry = crate::server::stats::SlowEntry {
            id: 0,
            time: crate::server::unix_ms() / 1000,
            micros,
            args: Vec::new(),
            peer: info.addr.to_string(),
            name: info.name.lock().map(|n| n.clone()).unwrap_or_default(),
        };
        let max = shared.stats.slowlog_max();
        let mut log = shared.stats.slowlog.lock().unwrap_or_else(|p| p.into_inner());
        log.push(&mut argv.rest(0), argv.len(), entry, max);
    }
    let threshold = shared.stats.latency_threshold();
    if threshold > 0 && micros / 1000 >= threshold {
        let event = if spec.has(flags::FAST) { "fast-command" } else { "command" };
        let mut lat = shared.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
        lat.add(event, crate::server::unix_ms() / 1000, micros / 1000);
    }
    if shared.monitors.active() && !session.rerun && !spec.has(flags::SKIP_MONITOR | flags::ADMIN) {
        let line = crate::server::monitor::line(
            crate::server::shared::unix_us(),
            session.db,
            &session.info.addr,
            argv.rest(0),
        );
        shared.monitors.feed(&line);
    }
}

/// The reply to a command that may grow memory while memory is over `maxmemory` and nothing can
/// be evicted.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Parses an integer argument with redis-server's strictness.
pub fn int_arg(a: &[u8]) -> Result<i64, CmdError> {
    crate::types::string::parse_i64(a).ok_or(CmdError::NotInteger)
}

/// Case-insensitive comparison of an argument with an option name.
pub fn is(a: &[u8], name: &str) -> bool {
    a.eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_timeouts_parse_as_redis_server_does() {
        let now = 1_000_000;
        assert_eq!(parse_timeout(b"0", now), Ok(None), "0 waits forever");
        assert_eq!(parse_timeout(b"0.0001", now), Ok(None), "truncated to 0 ms, as redis-server");
        assert_eq!(parse_timeout(b"1.5", now), Ok(Some(now + 1500)));
        assert_eq!(parse_timeout(b"-0", now), Ok(None));
        let negative = Err(CmdError::err("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"-1", now), negative);
        assert_eq!(parse_timeout(b"1e20", now), negative, "overflows a 64-bit ms count");
        assert_eq!(parse_timeout(b"inf", now), negative);
        assert_eq!(parse_timeout(b"abc", now), Err(CmdError::err("ERR timeout is not a float or out of range")));
    }

    #[test]
    fn numkeys_commands_find_their_keys() {
        let lmpop = lookup(b"lmpop").expect("lmpop");
        let args: [&[u8]; 5] = [b"lmpop", b"2", b"a", b"b", b"left"];
        assert_eq!(lmpop.all_key_positions(args.len(), |i| args[i]), vec![2, 3]);
        let zus = lookup(b"zunionstore").expect("zunionstore");
        let args: [&[u8]; 6] = [b"zunionstore", b"d", b"2", b"a", b"b", b"weights"];
        assert_eq!(zus.all_key_positions(args.len(), |i| args[i]), vec![1, 3, 4]);
        assert!(zus.has(flags::MOVABLE_KEYS) && !lookup(b"get").expect("get").has(flags::MOVABLE_KEYS));
    }
}
