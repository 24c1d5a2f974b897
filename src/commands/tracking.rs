//! Client-side caching commands: CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR and
//! CLIENT TRACKINGINFO (their specs sit in the CLIENT container, `server::CLIENT_SUBS`), plus
//! the two hooks `commands::call` runs around every command: remembering what a tracking client
//! read, and invalidating what a command wrote. The table and the delivery are
//! `server::tracking`.

use super::arg::*;
use super::flags::*;
use super::{int_arg, is, Argv, CmdError, Ctx, Session, Spec};
use crate::server::pubsub::Publisher;
use crate::server::tracking::{Tracker, Tracking};
use crate::server::Shared;

/// `CLIENT TRACKING ON|OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST]
/// [OPTIN] [OPTOUT] [NOLOOP]`
pub const TRACKING_ARGS: &[Arg] = &[
    oneof("status", &[pure("ON").named("on"), pure("OFF").named("off")]),
    integer("client-id").token("REDIRECT").optional(),
    string("prefix").token("PREFIX").optional().multiple().multiple_token(),
    pure("BCAST").named("bcast").optional(),
    pure("OPTIN").named("optin").optional(),
    pure("OPTOUT").named("optout").optional(),
    pure("NOLOOP").named("noloop").optional(),
];

/// `CLIENT CACHING YES|NO`
pub const CACHING_ARGS: &[Arg] = &[oneof("mode", &[pure("YES").named("yes"), pure("NO").named("no")])];

/// A session's tracking state (None in `Session::tracking` when off).
#[derive(Debug, Clone, Default)]
pub struct TrackState {
    /// BCAST mode.
    pub bcast: bool,
    /// OPTIN: only reads after CLIENT CACHING YES are remembered.
    pub optin: bool,
    /// OPTOUT: reads after CLIENT CACHING NO are not remembered.
    pub optout: bool,
    /// NOLOOP.
    pub noloop: bool,
    /// REDIRECT target (0: none).
    pub redirect: u64,
    /// BCAST prefixes, in the order given.
    pub prefixes: Vec<Vec<u8>>,
    /// CLIENT CACHING was given for the next command.
    pub caching: bool,
}

fn overlaps(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// CLIENT TRACKING: options parsed and checked in redis-server's order, with its messages.
pub fn client_tracking(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let on = if is(argv.get(2), "ON") {
        true
    } else if is(argv.get(2), "OFF") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let mut t = TrackState::default();
    let mut redirect = None;
    let mut i = 3;
    while i < argv.len() {
        let opt = argv.get(i);
        let more = i + 1 < argv.len();
        if is(opt, "REDIRECT") && more {
            if redirect.is_some() {
                return Err(CmdError::err("ERR A client can only redirect to a single other client"));
            }
            let id = int_arg(argv.get(i + 1))?;
            let id = u64::try_from(id).unwrap_or(0);
            if !Tracking::client_exists(ctx.shared, id) {
                return Err(CmdError::err("ERR The client ID you want redirect to does not exist"));
            }
            redirect = Some(id);
            i += 1;
        } else if is(opt, "BCAST") {
            t.bcast = true;
        } else if is(opt, "OPTIN") {
            t.optin = true;
        } else if is(opt, "OPTOUT") {
            t.optout = true;
        } else if is(opt, "NOLOOP") {
            t.noloop = true;
        } else if is(opt, "PREFIX") && more {
            t.prefixes.push(argv.get(i + 1).to_vec());
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let id = ctx.session.info.id;
    if !on {
        ctx.session.tracking = None;
        publish_state(&ctx.session.info, None);
        ctx.shared.tracking.disable(id);
        super::notify::refresh_logs(ctx.shared);
        ctx.out.ok();
        return Ok(());
    }
    if !t.bcast && !t.prefixes.is_empty() {
        return Err(CmdError::err("ERR PREFIX option requires BCAST mode to be enabled"));
    }
    let old = ctx.session.tracking.clone();
    if old.as_ref().is_some_and(|o| o.bcast != t.bcast) {
        return Err(CmdError::err(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if t.bcast && (t.optin || t.optout) {
        return Err(CmdError::err("ERR OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if t.optin && t.optout {
        return Err(CmdError::err("ERR You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if old.as_ref().is_some_and(|o| (t.optin && o.optout) || (t.optout && o.optin)) {
        return Err(CmdError::err(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if t.bcast {
        let existing: &[Vec<u8>] = old.as_ref().map_or(&[], |o| &o.prefixes);
        for p in &t.prefixes {
            if let Some(e) = existing.iter().find(|e| *e != p && overlaps(p, e)) {
                return Err(CmdError::err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(e)
                )));
            }
        }
        for (a, p) in t.prefixes.iter().enumerate() {
            if let Some(q) = t.prefixes.iter().enumerate().find(|(b, q)| *b != a && overlaps(p, q)).map(|(_, q)| q) {
                return Err(CmdError::err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                )));
            }
        }
        // Prefixes add up over calls; BCAST without any is the empty prefix: every key.
        let mut all = existing.to_vec();
        all.extend(t.prefixes.iter().filter(|p| !existing.contains(p)).cloned());
        if all.is_empty() {
            all.push(Vec::new());
        }
        t.prefixes = all;
    }
    t.redirect = redirect.unwrap_or(0);
    let tracker = Tracker {
        worker: ctx.session.info.worker,
        info: ctx.session.info.clone(),
        redirect: t.redirect,
        noloop: t.noloop,
        prefixes: t.bcast.then(|| t.prefixes.clone()),
    };
    ctx.shared.tracking.enable(id, tracker);
    super::notify::refresh_logs(ctx.shared);
    publish_state(&ctx.session.info, Some(&t));
    ctx.session.tracking = Some(t);
    ctx.out.ok();
    Ok(())
}

/// CLIENT CACHING YES|NO: whether the next command's reads are remembered (OPTIN / OPTOUT).
pub fn client_caching(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let Some(t) = ctx.session.tracking.as_mut() else {
        return Err(CmdError::err(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    let opt = argv.get(2);
    if is(opt, "YES") {
        if !t.optin {
            return Err(CmdError::err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if is(opt, "NO") {
        if !t.optout {
            return Err(CmdError::err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    t.caching = true;
    ctx.out.ok();
    Ok(())
}

/// CLIENT GETREDIR: -1 when not tracking, else the redirect target (0: none).
pub fn client_getredir(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let r = ctx.session.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
    ctx.out.int(r);
    Ok(())
}

/// CLIENT TRACKINGINFO: flags (a set), redirect, prefixes — redis-server's map.
pub fn client_trackinginfo(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let t = ctx.session.tracking.clone();
    let mut flags: Vec<&str> = Vec::new();
    match &t {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            if t.bcast {
                flags.push("bcast");
            }
            if t.optin {
                flags.push("optin");
                if t.caching {
                    flags.push("caching-yes");
                }
            }
            if t.optout {
                flags.push("optout");
                if t.caching {
                    flags.push("caching-no");
                }
            }
            if t.noloop {
                flags.push("noloop");
            }
        }
    }
    ctx.out.map(3);
    ctx.out.bulk(b"flags");
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"redirect");
    ctx.out.int(t.as_ref().map_or(-1, |t| t.redirect as i64));
    ctx.out.bulk(b"prefixes");
    let prefixes: &[Vec<u8>] = match &t {
        Some(t) if t.bcast => &t.prefixes,
        _ => &[],
    };
    ctx.out.array(prefixes.len());
    for p in prefixes {
        ctx.out.bulk(p);
    }
    Ok(())
}

/// Mirrors the tracking state into the client's shared record (CLIENT LIST flags and `redir`).
fn publish_state(info: &crate::server::ClientInfo, t: Option<&TrackState>) {
    use crate::server::shared::{TRACKING_BCAST, TRACKING_ON};
    use std::sync::atomic::Ordering::Relaxed;
    let bits = t.map_or(0, |t| TRACKING_ON | if t.bcast { TRACKING_BCAST } else { 0 });
    info.tracking.store(bits, Relaxed);
    // As redis-server: -1 when off, 0 when on without REDIRECT.
    info.redir.store(t.map_or(-1, |t| t.redirect as i64), Relaxed);
}

/// Turns tracking off for a session going away or RESET.
pub fn leave(shared: &Shared, session: &mut Session) {
    if session.tracking.take().is_some() {
        publish_state(&session.info, None);
        shared.tracking.disable(session.info.id);
        super::notify::refresh_logs(shared);
    }
}

/// After a command ran: remembers the keys a tracking client read (default mode, subject to
/// OPTIN/OPTOUT and CACHING), and invalidates the keys a write command names. Costs a field
/// test and one relaxed load when nobody tracks.
pub fn after_command(shared: &Shared, session: &mut Session, spec: &'static Spec, argv: &Argv<'_>) {
    if let Some(t) = session.tracking.as_mut() {
        if spec.has(READONLY) && !t.bcast && !((t.optin && !t.caching) || (t.optout && t.caching)) {
            let keys = spec.all_key_positions(argv.len(), |i| argv.get(i));
            shared.tracking.remember(session.info.id, keys.into_iter().map(|i| argv.get(i)));
        }
        // CACHING applies to the one command after it (CLIENT subcommands leave it set).
        if !spec.name.starts_with("client|") {
            t.caching = false;
        }
    }
    if !shared.tracking.is_active() || !spec.has(WRITE) {
        return;
    }
    let (id, worker) = (session.info.id, session.worker);
    if spec.name == "flushdb" || spec.name == "flushall" {
        shared.tracking.invalidate_all(shared, Some(Publisher { id, worker, out: &mut session.pushes }));
        return;
    }
    // Every key a write names, whether or not it changed: a spare invalidation costs a client
    // one refetch, a missing one a stale cache.
    for i in spec.all_key_positions(argv.len(), |i| argv.get(i)) {
        shared.tracking.invalidate(shared, argv.get(i), Some(Publisher { id, worker, out: &mut session.pushes }));
    }
}
