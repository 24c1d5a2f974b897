//! Connection commands: PING ECHO QUIT SELECT HELLO RESET.

use std::sync::atomic::Ordering;

use cachette_resp::Version;

use super::arg::*;
use super::flags::*;
use super::{int_arg, is, spec, Argv, CmdError, Ctx, Spec};
use crate::engine::DATABASES;

/// The version redis-server clients see (feature detection keys on it); cachette's own version
/// is reported separately in INFO.
pub const REDIS_VERSION: &str = "7.0.15";

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("ping", -1, FAST, (0, 0, 0), "connection", "1.0.0", "O(1)", "Ping the server", ping).args(&[string("message").optional()]),
    spec("echo", 2, FAST | STALE | LOADING, (0, 0, 0), "connection", "1.0.0", "O(1)", "Echo the given string", echo).args(&[string("message")]),
    spec("quit", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, (0, 0, 0), "connection", "1.0.0", "O(1)", "Close the connection", quit),
    spec("select", 2, FAST | STALE | LOADING, (0, 0, 0), "connection", "1.0.0", "O(1)", "Change the selected database for the current connection", select).args(&[integer("index")]),
    spec("hello", -1, FAST | STALE | LOADING | NO_AUTH | NOSCRIPT | ALLOW_BUSY, (0, 0, 0), "connection", "6.0.0", "O(1)", "Handshake with Redis", hello).args(HELLO_ARGS),
    spec("reset", 1, FAST | STALE | LOADING | NO_AUTH | NOSCRIPT | ALLOW_BUSY, (0, 0, 0), "connection", "6.2.0", "O(1)", "Reset the connection", reset),
];

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
const HELLO_ARGS: &[Arg] = &[block("arguments", HELLO_BLOCK).optional()];

const HELLO_BLOCK: &[Arg] = &[
    integer("protover"),
    block("username_password", &[string("username"), string("password")]).token("AUTH").optional(),
    string("clientname").token("SETNAME").optional(),
];

fn ping(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() <= 2 && ctx.session.version == Version::Resp2 && ctx.session.subs.active() {
        // Subscribed mode in RESP2: a reply shaped like a message, so clients reading a stream
        // of pushes can tell it apart.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(if argv.len() == 2 { argv.get(1) } else { b"" });
        return Ok(());
    }
    match argv.len() {
        1 => ctx.out.simple(b"PONG"),
        2 => ctx.out.bulk(argv.get(1)),
        _ => return Err(CmdError::err("ERR wrong number of arguments for 'ping' command")),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.bulk(argv.get(1));
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.session.close_after_reply = true;
    ctx.out.ok();
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let db = int_arg(argv.get(1))?;
    if i32::try_from(db).is_err() {
        return Err(CmdError::err("ERR value is out of range, value must between -2147483648 and 2147483647"));
    }
    let n = ctx.shared.config().databases.min(DATABASES);
    if db < 0 || db as usize >= n {
        return Err(CmdError::DbIndex);
    }
    ctx.session.db = db as usize;
    ctx.session.info.db.store(db as usize, Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

fn hello(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let mut version = ctx.session.version;
    let mut setname = None;
    let mut auth = None;
    if argv.len() >= 2 {
        let v = crate::types::string::parse_i64(argv.get(1))
            .ok_or_else(|| CmdError::err("ERR Protocol version is not an integer or out of range"))?;
        version = match v {
            2 => Version::Resp2,
            3 => Version::Resp3,
            _ => return Err(CmdError::err("NOPROTO unsupported protocol version")),
        };
        let mut i = 2;
        while i < argv.len() {
            let opt = argv.get(i);
            let more = argv.len() - i - 1;
            if is(opt, "AUTH") && more >= 2 {
                auth = Some((argv.get(i + 1), argv.get(i + 2)));
                i += 3;
            } else if is(opt, "SETNAME") && more >= 1 {
                let name = argv.get(i + 1);
                super::server::validate_client_name(name)?;
                setname = Some(name);
                i += 2;
            } else {
                return Err(CmdError::err(format!("ERR Syntax error in HELLO option '{}'", super::excerpt(opt, 128))));
            }
        }
    }
    if let Some((user, pass)) = auth {
        super::acl::authenticate(ctx, user, pass, argv.get(0))?;
    }
    if !ctx.session.authenticated {
        return Err(CmdError::err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = setname {
        super::server::set_client_name(ctx, name);
    }
    ctx.session.version = version;
    ctx.out.version = version;
    let proto = if version == Version::Resp3 { 3 } else { 2 };
    ctx.session.info.resp.store(proto, Ordering::Relaxed);
    ctx.out.map(7);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(REDIS_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.int(i64::from(proto));
    ctx.out.bulk(b"id");
    ctx.out.int(ctx.session.info.id as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(b"standalone");
    ctx.out.bulk(b"role");
    ctx.out.bulk(b"master");
    ctx.out.bulk(b"modules");
    ctx.out.array(0);
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    super::pubsub::leave_all(ctx.shared, ctx.session);
    super::tracking::leave(ctx.shared, ctx.session);
    ctx.session.tx.discard();
    ctx.session.db = 0;
    ctx.session.version = Version::Resp2;
    ctx.out.version = Version::Resp2;
    ctx.session.info.db.store(0, Ordering::Relaxed);
    ctx.session.info.resp.store(2, Ordering::Relaxed);
    super::server::set_client_name(ctx, b"");
    super::introspect::reset_client_state(ctx);
    super::acl::log_out(ctx.shared, ctx.session);
    ctx.out.simple(b"RESET");
    Ok(())
}
