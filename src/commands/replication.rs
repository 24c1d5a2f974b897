//! Replication commands, primary side: PSYNC SYNC REPLCONF WAIT ROLE.
//!
//! PSYNC and SYNC answer nothing here: they mark the session for hand-over, and the worker
//! gives the connection to the replication thread (`replication::primary`), which writes
//! +FULLRESYNC / +CONTINUE and everything after. REPLCONF records what a replica says about
//! itself in its session until then; its ACKs, once it is a replica, are read by that thread.

use super::arg::*;
use super::flags::*;
use super::{int_arg, is, spec, Argv, BlockRequest, CmdError, Ctx, Spec, TimeoutReply};
use crate::replication::{Hello, Role, SyncRequest};

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("psync", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, (0, 0, 0), "server", "2.8.0", "", "Internal command used for replication", psync).args(&[string("replicationid"), integer("offset")]),
    spec("sync", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, (0, 0, 0), "server", "1.0.0", "", "Internal command used for replication", sync),
    spec("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, (0, 0, 0), "server", "3.0.0", "O(1)", "An internal command for configuring the replication stream", replconf),
    spec("wait", 3, NOSCRIPT, (0, 0, 0), "generic", "3.0.0", "O(1)", "Wait for the synchronous replication of all the write commands sent in the context of the current connection", wait).args(&[integer("numreplicas"), integer("timeout")]),
    spec("role", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), "server", "2.8.12", "O(1)", "Return the role of the instance in the context of replication", role),
];

/// Refusals common to PSYNC and SYNC, worded as redis-server's `syncCommand`.
fn sync_checks(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    if !ctx.shared.repl.is_master() && !ctx.shared.replica.link_up() {
        return Err(CmdError::err("NOMASTERLINK Can't SYNC while not connected with my master"));
    }
    Ok(())
}

fn psync(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    sync_checks(ctx)?;
    let offset = int_arg(argv.get(2))?;
    let replid = String::from_utf8_lossy(argv.get(1)).into_owned();
    ctx.session.handoff = Some(SyncRequest::Psync { replid, offset });
    Ok(())
}

fn sync(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    sync_checks(ctx)?;
    ctx.session.handoff = Some(SyncRequest::Sync);
    Ok(())
}

/// redis-server's `NET_HOST_STR_LEN`: the longest ip-address a replica may announce.
const NET_HOST_STR_LEN: usize = 256;

fn replconf(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() % 2 == 0 {
        return Err(CmdError::Syntax);
    }
    let mut hello = ctx.session.repl_hello.as_deref().cloned().unwrap_or_default();
    for i in (1..argv.len()).step_by(2) {
        let (opt, val) = (argv.get(i), argv.get(i + 1));
        if is(opt, "listening-port") {
            let port = int_arg(val)?;
            hello.port = u16::try_from(port).unwrap_or(0);
        } else if is(opt, "ip-address") {
            if val.len() >= NET_HOST_STR_LEN {
                return Err(CmdError::err(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                )));
            }
            hello.ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(opt, "capa") {
            if is(val, "eof") {
                hello.capa_eof = true;
            } else if is(val, "psync2") {
                hello.capa_psync2 = true;
            }
        } else if is(opt, "ack") || is(opt, "getack") {
            // ACK comes from a replica (read by the replication thread once it is one); GETACK
            // is for a replica from its primary. Neither is answered.
            return Ok(());
        } else if is(opt, "rdb-only") {
            int_arg(val)?;
        } else {
            return Err(CmdError::err(format!("ERR Unrecognized REPLCONF option: {}", super::excerpt(opt, 128))));
        }
    }
    ctx.session.repl_hello = Some(Box::new(hello));
    ctx.out.ok();
    Ok(())
}

fn wait(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let repl = &ctx.shared.repl;
    if !repl.is_master() {
        return Err(CmdError::err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let numreplicas = int_arg(argv.get(1))?;
    let timeout = crate::types::string::parse_i64(argv.get(2))
        .ok_or_else(|| CmdError::err("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::err("ERR timeout is negative"));
    }
    // The stream offset after this client's last write (taken when its command finished, so
    // it may include a few bytes of other clients' writes: WAIT may wait for a little more
    // than its own, never for less).
    let offset = ctx.session.repl_woff;
    let acked = repl.acked(offset);
    if numreplicas <= 0 || acked as i64 >= numreplicas {
        ctx.out.int(acked as i64);
        return Ok(());
    }
    let deadline = (timeout > 0).then(|| ctx.now.saturating_add(timeout as u64));
    // The worker hands the wait to the replication thread once the client is parked (see
    // `Conn::block`): registered any earlier, an ACK arriving in between would find nobody to
    // answer, and the client would sit out its whole timeout.
    let on_timeout = TimeoutReply::Replicas { offset, numreplicas: numreplicas as usize };
    ctx.session.block = Some(BlockRequest { keys: Vec::new(), deadline, on_timeout });
    Ok(())
}

fn role(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let repl = &ctx.shared.repl;
    match repl.role() {
        Role::Master => {
            let online: Vec<_> =
                repl.replicas().into_iter().filter(|r| r.state == crate::replication::ReplicaState::Online).collect();
            ctx.out.array(3);
            ctx.out.bulk(b"master");
            ctx.out.int(ctx.engine().feed.repl_offset() as i64);
            ctx.out.array(online.len());
            for r in online {
                ctx.out.array(3);
                ctx.out.bulk(r.ip.as_bytes());
                ctx.out.bulk(r.port.to_string().as_bytes());
                ctx.out.bulk(r.ack_offset.to_string().as_bytes());
            }
        }
        Role::Replica { .. } => crate::replication::replica::role_reply(ctx.shared, &mut ctx.out),
    }
    Ok(())
}

/// The hello a session built with REPLCONF, for the hand-over.
pub fn take_hello(session: &mut super::Session) -> Hello {
    session.repl_hello.take().map(|h| *h).unwrap_or_default()
}
