//! The memcached binary protocol's commands, on the same engine operations as the text
//! protocol: `store` for SET/ADD/REPLACE/APPEND/PREPEND, `arith` for INCREMENT/DECREMENT,
//! `fetch` for GET/GAT/TOUCH, `flush_all`, and `stats` (whose text lines are re-framed as
//! binary STAT packets, so both protocols report the same figures from one place).
//!
//! What memcached 1.6.18 answers, and so what this module answers:
//! - Every response echoes the request's opcode (a quiet one included) and opaque. Its CAS is
//!   the item's after a successful GET/SET/INCREMENT/APPEND, else 0.
//! - A quiet command (GETQ, SETQ, DELETEQ, …) is answered only on error, except that a GETQ or
//!   GATQ hit is answered; a miss of those is silent. Clients pipeline quiet requests and end
//!   them with a NOOP, whose answer tells them every earlier one has been answered.
//! - A non-zero CAS in a SET/ADD/REPLACE header turns it into a compare-and-swap (memcached's
//!   `NREAD_CAS`: Not found when the key is missing, Data exists when the CAS differs); APPEND,
//!   PREPEND, DELETE and INCREMENT compare it too. With CAS disabled (`memcache-cas no`, -C)
//!   every CAS reported is 0 and the stores ignore the header's CAS, as memcached -C does.
//! - Statuses of a refused store: ADD of an existing key answers KEY_EEXISTS, REPLACE of a
//!   missing one KEY_ENOENT, APPEND/PREPEND to a missing one NOT_STORED.
//! - INCREMENT/DECREMENT of a missing key creates it with the initial value unless the
//!   expiration is 0xffffffff (then KEY_ENOENT); the answer is the 8-byte new value.
//! - With SASL on, a request other than VERSION and the SASL ones from a connection that has
//!   not authenticated is answered AUTH_ERROR and the connection closed.

use cachette_memcache::binary::{self, opcode, Command, Header, Refusal, Request, Status, StoreKind};
use cachette_memcache::request::StoreMode;

use super::sasl::{self, SaslState};
use super::{
    arith, bump, fetch, flush_all, store, unlink, Action, ArithOutcome, ArithRequest, StoreRequest, StoreResult, DB,
    MEMCACHED_VERSION,
};
use crate::commands::Session;
use crate::server::Shared;

/// The expiration that tells INCREMENT/DECREMENT not to create a missing item.
const NO_CREATE: u32 = 0xffff_ffff;

/// Per-connection state of the binary protocol.
#[derive(Debug, Default)]
pub struct BinarySession {
    /// SASL progress (ignored when SASL is off).
    pub sasl: SaslState,
}

impl BinarySession {
    /// With SASL on, whether `header` may run on this connection now.
    fn allowed(&self, shared: &Shared, header: &Header) -> bool {
        shared.memcache_sasl.is_none() || self.sasl.authenticated || header.allowed_unauthenticated()
    }
}

/// Runs one request, appending its response (if any) to `out`.
pub fn execute(
    shared: &Shared,
    session: &mut Session,
    bin: &mut BinarySession,
    req: Request<'_>,
    out: &mut Vec<u8>,
    now: u64,
) -> Action {
    let h = req.header;
    if !bin.allowed(shared, &h) {
        binary::error(out, &h, Status::AuthError);
        return Action::Close;
    }
    shared.counters.commands_processed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    super::apply_pending_flush(shared, now);
    if super::read_only_replica(shared) && writes(&req.command) {
        binary::error(out, &h, Status::NotSupported);
        return Action::Continue;
    }
    let quiet = req.quiet();
    // Success without a body, which quiet commands leave unsaid.
    let ok = |out: &mut Vec<u8>, cas: u64| {
        if !quiet {
            binary::response(out, h.opcode, Status::NoError, h.opaque, cas, b"", b"", b"");
        }
    };
    match req.command {
        Command::Get { key, with_key, touch } => {
            let hit = fetch(shared, key, touch.map(i64::from), now, |flags, cas, value| {
                let echo_key: &[u8] = if with_key { key } else { b"" };
                binary::response(out, h.opcode, Status::NoError, h.opaque, cas, &flags.to_be_bytes(), echo_key, value);
            });
            if !hit && !quiet {
                if with_key {
                    // GETK's miss carries the key instead of the "Not found" text.
                    binary::response(out, h.opcode, Status::KeyEnoent, h.opaque, 0, b"", key, b"");
                } else {
                    binary::error(out, &h, Status::KeyEnoent);
                }
            }
        }
        Command::Touch { key, exptime } => {
            let hit = fetch(shared, key, Some(i64::from(exptime)), now, |flags, cas, _| {
                binary::response(out, h.opcode, Status::NoError, h.opaque, cas, &flags.to_be_bytes(), b"", b"");
            });
            if !hit {
                binary::error(out, &h, Status::KeyEnoent);
            }
        }
        Command::Store { kind, key, flags, exptime, value } => {
            bump(&shared.memcache.cmd_set);
            // With CAS disabled (-C) memcached cannot put the CAS on the new item, so the
            // store goes ahead as if none was sent (DELETE and INCREMENT still compare).
            let cas_disabled = shared.memcache.cas_disabled.load(std::sync::atomic::Ordering::Relaxed);
            let compare_cas = (h.cas != 0 && !cas_disabled).then_some(h.cas);
            let mode = match kind {
                // memcached turns any SET/ADD/REPLACE with a CAS into a compare-and-swap.
                StoreKind::Set | StoreKind::Add | StoreKind::Replace if compare_cas.is_some() => StoreMode::Cas,
                StoreKind::Set => StoreMode::Set,
                StoreKind::Add => StoreMode::Add,
                StoreKind::Replace => StoreMode::Replace,
                StoreKind::Append => StoreMode::Append,
                StoreKind::Prepend => StoreMode::Prepend,
            };
            let req = StoreRequest {
                mode,
                key,
                flags,
                exptime: i64::from(exptime),
                data: value,
                compare_cas,
                invalidate: false,
                binary_key: false,
            };
            match store(shared, &req, now) {
                (StoreResult::Stored, cas) => ok(out, cas),
                (StoreResult::Exists, _) => binary::error(out, &h, Status::KeyEexists),
                (StoreResult::NotFound, _) => binary::error(out, &h, Status::KeyEnoent),
                (StoreResult::NotStored, _) => binary::error(out, &h, not_stored_status(mode)),
                // memcached's out_of_memory() answers a binary client ENOMEM with the text
                // protocol's message, less its "SERVER_ERROR " prefix.
                (StoreResult::OutOfMemory, _) => {
                    binary::error_text(out, &h, Status::Enomem, b"Out of memory allocating item")
                }
            }
        }
        Command::Delete { key } => {
            let st = &shared.memcache;
            let k = shared.engine.hashed(key);
            let mut l = super::lock_key(shared, &k);
            let have = l.peek(DB, &k, now).map(|e| super::cas_of(shared, e));
            match have {
                None => {
                    bump(&st.delete_misses);
                    binary::error(out, &h, Status::KeyEnoent);
                }
                Some(cas) if h.cas != 0 && h.cas != cas => binary::error(out, &h, Status::KeyEexists),
                Some(_) => {
                    l.delete(DB, &k, now);
                    drop(l);
                    super::event(shared, crate::commands::notify::GENERIC, "del", key);
                    bump(&st.delete_hits);
                    ok(out, 0);
                }
            }
        }
        Command::Arith { incr, key, delta, initial, exptime } => {
            let create = (exptime != NO_CREATE).then_some((initial, i64::from(exptime)));
            let compare_cas = (h.cas != 0).then_some(h.cas);
            match arith(shared, &ArithRequest { key, incr, delta, compare_cas, create }, now) {
                ArithOutcome::Value { value, cas } => {
                    if !quiet {
                        binary::response(out, h.opcode, Status::NoError, h.opaque, cas, b"", b"", &value.to_be_bytes());
                    }
                }
                ArithOutcome::NotFound => binary::error(out, &h, Status::KeyEnoent),
                ArithOutcome::NonNumeric => binary::error(out, &h, Status::DeltaBadval),
                ArithOutcome::Exists => binary::error(out, &h, Status::KeyEexists),
                ArithOutcome::NotStored => binary::error(out, &h, Status::NotStored),
            }
        }
        Command::Quit => {
            ok(out, 0);
            return Action::Close;
        }
        Command::Flush { delay } => {
            flush_all(shared, i64::from(delay), now);
            ok(out, 0);
        }
        Command::Noop => ok(out, 0),
        Command::Version => {
            binary::response(out, h.opcode, Status::NoError, h.opaque, 0, b"", b"", MEMCACHED_VERSION.as_bytes())
        }
        Command::Stat { group } => stat(shared, session, &h, group, out, now),
        Command::SaslListMechs => match shared.memcache_sasl {
            Some(_) => binary::response(out, h.opcode, Status::NoError, h.opaque, 0, b"", b"", sasl::MECHS),
            None => binary::error(out, &h, Status::UnknownCommand),
        },
        Command::SaslAuth { step, mech, data } => match &shared.memcache_sasl {
            // memcached counts finished attempts in auth_cmds, failed ones in auth_errors too.
            Some(users) => match bin.sasl.auth(users, step, mech, data) {
                sasl::Outcome::Ok => {
                    bump(&shared.memcache.auth_cmds);
                    binary::response(out, h.opcode, Status::NoError, h.opaque, 0, b"", b"", b"Authenticated")
                }
                sasl::Outcome::Continue => binary::error(out, &h, Status::AuthContinue),
                sasl::Outcome::Failed => {
                    bump(&shared.memcache.auth_cmds);
                    bump(&shared.memcache.auth_errors);
                    binary::error(out, &h, Status::AuthError)
                }
            },
            None => binary::error(out, &h, Status::UnknownCommand),
        },
    }
    if crate::commands::notify::pending(shared) {
        crate::commands::notify::flush_expired(shared, None);
    }
    Action::Continue
}

/// The status of a store that did not happen, as memcached words it per command.
fn not_stored_status(mode: StoreMode) -> Status {
    match mode {
        StoreMode::Add => Status::KeyEexists,
        StoreMode::Replace => Status::KeyEnoent,
        _ => Status::NotStored,
    }
}

/// Answers a request the codec refused (see `cachette_memcache::binary`). Returns whether the
/// connection must close after the reply.
pub fn refuse(shared: &Shared, bin: &BinarySession, r: &Refusal<'_>, out: &mut Vec<u8>, now: u64) -> bool {
    if !r.before_auth && !bin.allowed(shared, &r.header) {
        binary::error(out, &r.header, Status::AuthError);
        return true;
    }
    let sasl_op = matches!(r.header.opcode, opcode::SASL_AUTH | opcode::SASL_STEP);
    let status = if sasl_op && shared.memcache_sasl.is_none() && !r.close {
        // With SASL off memcached does not look at the SASL request at all.
        Status::UnknownCommand
    } else {
        r.status
    };
    if let Some(key) = r.unlink {
        bump(&shared.memcache.cmd_set);
        unlink(shared, key, now);
    }
    binary::error(out, &r.header, status);
    r.close
}

/// STAT: the text protocol's `stats [group]` lines, each re-framed as a packet with the name as
/// key and the value as body, then an empty packet that ends the list. Which groups binary STAT
/// serves is memcached's choice: `reset`, `settings` and `detail` are matched as prefixes of the
/// key; `items`, `slabs` and `sizes` exactly; any other group (`conns` and `cachedump`
/// included, which memcached serves only as text) answers KEY_ENOENT.
fn stat(shared: &Shared, session: &Session, h: &Header, group: &[u8], out: &mut Vec<u8>, now: u64) {
    let args: &[u8] = if group.starts_with(b"reset") {
        b"reset"
    } else if group.starts_with(b"settings") {
        b"settings"
    } else if let Some(sub) = group.strip_prefix(b"detail") {
        if sub.starts_with(b" dump") {
            // No per-prefix statistics are collected: the dump is memcached's empty one.
            binary::response(out, h.opcode, Status::NoError, h.opaque, 0, b"", b"detailed", b"END\r\n");
        } else if !(sub.starts_with(b" on") || sub.starts_with(b" off")) {
            binary::error(out, h, Status::KeyEnoent);
            return;
        }
        binary::response(out, h.opcode, Status::NoError, h.opaque, 0, b"", b"", b"");
        return;
    } else if matches!(group, b"" | b"items" | b"slabs" | b"sizes") {
        group
    } else {
        binary::error(out, h, Status::KeyEnoent);
        return;
    };
    let mut text = Vec::new();
    super::stats::stats(shared, session, args, &mut text, now);
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(stat) = line.strip_prefix(b"STAT ") else { continue };
        let (name, value) = match stat.iter().position(|&b| b == b' ') {
            Some(i) => (&stat[..i], &stat[i + 1..]),
            None => (stat, &b""[..]),
        };
        binary::response(out, h.opcode, Status::NoError, h.opaque, 0, b"", name, value);
    }
    binary::response(out, h.opcode, Status::NoError, h.opaque, 0, b"", b"", b"");
}

/// True for the requests that change an item (a touch included): refused on a read-only
/// replica.
fn writes(cmd: &Command<'_>) -> bool {
    match cmd {
        Command::Get { touch, .. } => touch.is_some(),
        Command::Touch { .. } | Command::Store { .. } | Command::Delete { .. } | Command::Arith { .. } => true,
        Command::Flush { .. } => true,
        _ => false,
    }
}
