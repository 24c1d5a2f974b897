//! Persistence commands: SAVE, BGSAVE, LASTSAVE, SHUTDOWN, and DUMP/RESTORE (a value moved in
//! Redis's payload format: RDB value, RDB version, CRC-64). How snapshots are taken lives in
//! `crate::persist`; these handlers parse, validate and reply.

use super::arg::*;
use super::flags::*;
use super::{int_arg, is, spec, Argv, CmdError, Ctx, Spec};
use crate::persist::{self, rdb, SaveError};
use crate::types::Value;

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("save", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, (0, 0, 0), "server", "1.0.0", "O(N) where N is the total number of keys in all databases", "Synchronously save the dataset to disk", save),
    spec("bgsave", -1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, (0, 0, 0), "server", "1.0.0", "O(1)", "Asynchronously save the dataset to disk", bgsave).args(&[pure("SCHEDULE").token("SCHEDULE").named("schedule").since("3.2.2").optional()]),
    spec("lastsave", 1, LOADING | STALE | FAST, (0, 0, 0), "server", "1.0.0", "O(1)", "Get the UNIX time stamp of the last successful save to disk", lastsave),
    spec("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, (0, 0, 0), "server", "1.0.0", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", "Synchronously save the dataset to disk and then shut down the server", shutdown).args(SHUTDOWN_ARGS),
    spec("dump", 2, READONLY, (1, 1, 1), "generic", "2.6.0", "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).", "Return a serialized version of the value stored at the specified key.", dump).args(&[key("key")]),
    spec("restore", -4, WRITE | DENYOOM, (1, 1, 1), "generic", "2.6.0", "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).", "Create a key using the provided serialized value, previously obtained using DUMP.", restore).args(RESTORE_ARGS),
];

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`
const SHUTDOWN_ARGS: &[Arg] = &[
    oneof("nosave_save", &[pure("NOSAVE").named("nosave"), pure("SAVE").named("save")]).optional(),
    pure("NOW").named("now").since("7.0.0").optional(),
    pure("FORCE").named("force").since("7.0.0").optional(),
    pure("ABORT").named("abort").since("7.0.0").optional(),
];

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`
const RESTORE_ARGS: &[Arg] = &[
    key("key"),
    integer("ttl"),
    string("serialized-value"),
    pure("REPLACE").named("replace").since("3.0.0").optional(),
    pure("ABSTTL").named("absttl").since("5.0.0").optional(),
    integer("seconds").token("IDLETIME").since("5.0.0").optional(),
    integer("frequency").token("FREQ").since("5.0.0").optional(),
];

fn save_error(e: SaveError) -> CmdError {
    match e {
        SaveError::InProgress => CmdError::err("ERR Background save already in progress"),
        SaveError::Failed => CmdError::err("ERR"),
    }
}

fn save(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    persist::save(ctx.shared).map_err(save_error)?;
    ctx.out.ok();
    Ok(())
}

fn bgsave(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let schedule = match argv.len() {
        1 => false,
        2 if is(argv.get(1), "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    if ctx.shared.persist.bgsave_in_progress() {
        if schedule {
            persist::schedule(ctx.shared);
            ctx.out.simple(b"Background saving scheduled");
            return Ok(());
        }
        return Err(save_error(SaveError::InProgress));
    }
    persist::bgsave(ctx.shared).map_err(save_error)?;
    ctx.out.simple(b"Background saving started");
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.int(ctx.shared.persist.lastsave() as i64);
    Ok(())
}

/// SHUTDOWN: takes the final snapshot here (so a failure can be reported to the client, as
/// redis-server does), then stops the server. On success there is no reply: the connection
/// closes, as with redis-server.
fn shutdown(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (mut save, mut nosave, mut force, mut abort) = (false, false, false, false);
    for a in argv.rest(1) {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
        } else if is(a, "force") {
            force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (save && nosave) || (abort && argv.len() > 2) {
        return Err(CmdError::Syntax);
    }
    if abort {
        // Shutting down never waits here (no replicas to catch up), so nothing is pending.
        return Err(CmdError::err("ERR No shutdown in progress."));
    }
    if persist::shutdown_save(ctx.shared, save, nosave).is_err() && !force {
        return Err(CmdError::err("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    ctx.shared.persist.set_shutdown_handled();
    ctx.shared.shutdown.store(true, std::sync::atomic::Ordering::Release);
    ctx.session.close_after_reply = true;
    Ok(())
}

fn dump(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let compress = ctx.shared.config().rdbcompression;
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    let payload = l.read(db, &k, now).map(|e| rdb::dump_payload(&e.value, compress));
    drop(l);
    match payload {
        Some(p) => ctx.out.bulk(&p),
        None => ctx.out.null(),
    }
    Ok(())
}

fn restore(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let (engine, db, now) = (ctx.engine(), ctx.session.db, ctx.now);
    let (mut replace, mut absttl, mut idle, mut freq) = (false, false, None, None);
    let mut i = 4;
    while i < argv.len() {
        let a = argv.get(i);
        if is(a, "replace") {
            replace = true;
        } else if is(a, "absttl") {
            absttl = true;
        } else if is(a, "idletime") && i + 1 < argv.len() && freq.is_none() {
            let v = int_arg(argv.get(i + 1))?;
            if v < 0 {
                return Err(CmdError::err("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v as u64);
            i += 1;
        } else if is(a, "freq") && i + 1 < argv.len() && idle.is_none() {
            let v = int_arg(argv.get(i + 1))?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::err("ERR Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v as u8);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let k = engine.hashed(argv.get(1));
    let mut l = engine.lock_one(&k);
    // redis-server's order: options, then an existing key, then the TTL, then the payload.
    if !replace && l.peek(db, &k, now).is_some() {
        return Err(CmdError::err("BUSYKEY Target key name already exists."));
    }
    let ttl = int_arg(argv.get(2))?;
    if ttl < 0 {
        return Err(CmdError::err("ERR Invalid TTL value, must be >= 0"));
    }
    let value: Value = rdb::read_payload(argv.get(3)).map_err(|e| match e {
        rdb::PayloadError::Footer => CmdError::err("ERR DUMP payload version or checksum are wrong"),
        rdb::PayloadError::Format => CmdError::err("ERR Bad data format"),
    })?;
    let expire_at = match ttl {
        0 => None,
        t if absttl => Some(t as u64),
        t => Some(now.saturating_add(t as u64)),
    };
    // A TTL already in the past: redis-server deletes the old key and stores nothing.
    if expire_at.is_some_and(|at| at <= now) {
        if replace && l.delete(db, &k, now) {
            crate::engine::effects::rewrite(&[b"DEL", argv.get(1)]);
        }
        drop(l);
        ctx.out.ok();
        return Ok(());
    }
    // Replayed later, a relative TTL would mean another instant: log it absolute, as
    // redis-server propagates RESTORE (the TTL argument rewritten, ABSTTL appended).
    if let (Some(at), false) = (expire_at, absttl) {
        let at = at.to_string();
        let mut args: Vec<&[u8]> = argv.rest(0).collect();
        args[2] = at.as_bytes();
        args.push(b"ABSTTL");
        crate::engine::effects::rewrite(&args);
    }
    let e = l.set(db, &k, value, expire_at, 0, false, now);
    if let Some(idle) = idle {
        e.lru = ((now / 1000).saturating_sub(idle)) as u32;
    }
    if let Some(f) = freq {
        e.lfu = f;
    }
    drop(l);
    ctx.out.ok();
    Ok(())
}
