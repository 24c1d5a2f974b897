//! The scripting family without a scripting engine: SCRIPT KILL and FUNCTION KILL (plus their
//! HELP), nothing else.
//!
//! cachette runs no Lua, so no script or function can ever be executing, and both KILLs answer
//! what redis-server answers when none is: `-NOTBUSY No scripts in execution right now.`.
//! They exist because clients send them without having run a script themselves: redis-sentinel
//! sends SCRIPT KILL to an instance that answered `-BUSY`, and a tool cleaning up after a
//! timeout may send either. EVAL, EVALSHA, FCALL and the other SCRIPT / FUNCTION subcommands
//! (LOAD, EXISTS, FLUSH, LIST, DUMP, …) are absent on purpose: they are answered as unknown
//! commands / subcommands, which tells a client the truth (no scripting here), where a stub
//! that accepted SCRIPT LOAD would promise an EVALSHA that cannot follow.

use super::flags::*;
use super::{container, spec, Argv, CmdError, Ctx, Spec};

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    container("script", -2, "scripting", "2.6.0", "A container for Lua scripts management commands", SCRIPT_SUBS),
    container("function", -2, "scripting", "7.0.0", "A container for function commands", FUNCTION_SUBS),
];

#[rustfmt::skip]
const SCRIPT_SUBS: &[Spec] = &[
    spec("script|help", 2, LOADING | STALE, (0, 0, 0), "scripting", "5.0.0", "O(1)", "Show helpful text about the different subcommands", script_help),
    spec("script|kill", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), "scripting", "2.6.0", "O(1)", "Kill the script currently in execution.", kill),
];

#[rustfmt::skip]
const FUNCTION_SUBS: &[Spec] = &[
    spec("function|help", 2, LOADING | STALE, (0, 0, 0), "scripting", "7.0.0", "O(1)", "Show helpful text about the different subcommands", function_help),
    spec("function|kill", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), "scripting", "7.0.0", "O(1)", "Kill the function currently in execution.", kill),
];

/// redis-server's reply to SCRIPT KILL and FUNCTION KILL when nothing runs (both commands share
/// it there too).
const NOT_BUSY: &str = "NOTBUSY No scripts in execution right now.";

/// SCRIPT KILL / FUNCTION KILL: nothing can be running, see the module documentation.
fn kill(_ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    Err(CmdError::err(NOT_BUSY))
}

/// redis-server's help lines for the subcommands cachette has.
fn script_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    super::server::help(ctx, "SCRIPT", &["KILL", "    Kill the currently executing Lua script."]);
    Ok(())
}

fn function_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    super::server::help(ctx, "FUNCTION", &["KILL", "    Kill the current running function."]);
    Ok(())
}
