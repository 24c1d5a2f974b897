//! REPLICAOF / SLAVEOF: follow a master, or stop following one. The link itself is
//! `replication::replica`'s; these handlers parse, validate and reply as redis-server does.

use super::arg::*;
use super::flags::*;
use super::{is, spec, Argv, CmdError, Ctx, Spec};
use crate::replication::replica::{self, Outcome};

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("replicaof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, (0, 0, 0), "server", "5.0.0", "O(1)", "Make the server a replica of another instance, or promote it as master.", replicaof).args(REPLICAOF_ARGS),
    spec("slaveof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, (0, 0, 0), "server", "1.0.0", "O(1)", "Make the server a replica of another instance, or promote it as master.", replicaof).args(REPLICAOF_ARGS),
];

/// `REPLICAOF host port | NO ONE`
const REPLICAOF_ARGS: &[Arg] = &[oneof(
    "args",
    &[
        block("host-port", &[string("host"), integer("port")]),
        block("no-one", &[pure("NO").named("no"), pure("ONE").named("one")]),
    ],
)];

fn replicaof(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if is(argv.get(1), "no") && is(argv.get(2), "one") {
        replica::set_master(ctx.shared, None);
        ctx.out.ok();
        return Ok(());
    }
    let port = crate::types::string::parse_i64(argv.get(2))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CmdError::err("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(argv.get(1)).into_owned();
    match replica::set_master(ctx.shared, Some((host, port))) {
        Outcome::Already => ctx.out.simple(b"OK Already connected to specified master"),
        Outcome::Changed => ctx.out.ok(),
    }
    Ok(())
}
