//! Access control commands: AUTH and the ACL container (SETUSER GETUSER DELUSER LIST USERS
//! WHOAMI CAT LOG GENPASS DRYRUN LOAD SAVE HELP), over the users of [`crate::acl`].
//!
//! The permission check itself runs in the dispatcher (`commands::execute` calls [`admit`]);
//! this module holds the commands and the wording of refusals.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::arg::*;
use super::flags::*;
use super::{category, container, int_arg, is, spec, Argv, CmdError, Ctx, Session, Spec};
use crate::acl::{self, Denied, LogEntry, User};
use crate::server::Shared;

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, (0, 0, 0), "connection", "1.0.0", "O(N) where N is the number of passwords defined for the user", "Authenticate to the server", auth).args(&[string("username").since("6.0.0").optional(), string("password")]),
    container("acl", -2, "server", "6.0.0", "A container for Access List Control commands ", ACL_SUBS),
];

const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

#[rustfmt::skip]
const ACL_SUBS: &[Spec] = &[
    spec("acl|cat", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "6.0.0", "O(1) since the categories and commands are a fixed set.", "List the ACL categories or the commands inside a category", acl_cat).args(&[string("categoryname").optional()]),
    spec("acl|deluser", -3, ADM, (0, 0, 0), "server", "6.0.0", "O(1) amortized time considering the typical user.", "Remove the specified ACL users and the associated rules", acl_deluser).args(&[string("username").multiple()]),
    spec("acl|dryrun", -4, ADM, (0, 0, 0), "server", "7.0.0", "O(1).", "Returns whether the user can execute the given command without executing the command.", acl_dryrun).args(&[string("username"), string("command"), string("arg").optional().multiple()]),
    spec("acl|genpass", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "6.0.0", "O(1)", "Generate a pseudorandom secure password to use for ACL users", acl_genpass).args(&[integer("bits").optional()]),
    spec("acl|getuser", 3, ADM, (0, 0, 0), "server", "6.0.0", "O(N). Where N is the number of password, command and pattern rules that the user has.", "Get the rules for a specific ACL user", acl_getuser).args(&[string("username")]),
    spec("acl|list", 2, ADM, (0, 0, 0), "server", "6.0.0", "O(N). Where N is the number of configured users.", "List the current ACL rules in ACL config file format", acl_list),
    spec("acl|load", 2, ADM, (0, 0, 0), "server", "6.0.0", "O(N). Where N is the number of configured users.", "Reload the ACLs from the configured ACL file", acl_load),
    spec("acl|log", -2, ADM, (0, 0, 0), "server", "6.0.0", "O(N) with N being the number of entries shown.", "List latest events denied because of ACLs in place", acl_log).args(&[oneof("operation", &[integer("count"), pure("RESET")]).optional()]),
    spec("acl|save", 2, ADM, (0, 0, 0), "server", "6.0.0", "O(N). Where N is the number of configured users.", "Save the current ACL rules in the configured ACL file", acl_save),
    spec("acl|setuser", -3, ADM, (0, 0, 0), "server", "6.0.0", "O(N). Where N is the number of rules provided.", "Modify or create the rules for a specific ACL user", acl_setuser).args(&[string("username"), string("rule").optional().multiple()]),
    spec("acl|users", 2, ADM, (0, 0, 0), "server", "6.0.0", "O(N). Where N is the number of configured users.", "List the username of all the configured ACL rules", acl_users),
    spec("acl|whoami", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "6.0.0", "O(1)", "Return the name of the user associated to the current connection", acl_whoami),
    spec("acl|help", 2, LOADING | STALE, (0, 0, 0), "server", "6.0.0", "O(1)", "Show helpful text about the different subcommands", acl_help),
];

/// The reply before authentication.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The user a session runs as.
pub fn session_user<'s>(shared: &'s Shared, session: &'s Session) -> &'s Arc<User> {
    session.user.as_ref().unwrap_or(&shared.acl.default)
}

/// The dispatcher's gate for a resolved command: NOAUTH before authentication (except for
/// the `no_auth` commands), then the user's permissions. Costs one relaxed load for an
/// authenticated user who may run everything.
#[inline]
pub fn admit(shared: &Shared, session: &Session, spec: &'static Spec, argv: &Argv<'_>) -> Result<(), CmdError> {
    if session.authenticated && session_user(shared, session).is_open() {
        return Ok(());
    }
    admit_slow(shared, session, spec, argv)
}

#[cold]
fn admit_slow(shared: &Shared, session: &Session, spec: &'static Spec, argv: &Argv<'_>) -> Result<(), CmdError> {
    if !session.authenticated && !shared.acl.default_is_open_door() && !spec.has(NO_AUTH) {
        return Err(CmdError::err(NOAUTH));
    }
    if spec.has(NO_AUTH) {
        return Ok(());
    }
    let user = session_user(shared, session);
    let denied = user.rules().check(spec, argv.len(), |i| argv.get(i));
    let Err(denied) = denied else { return Ok(()) };
    let (reason, object) = object_of(&denied, spec, argv);
    let context = if session.tx.in_multi() { "multi" } else { "toplevel" };
    log_denial(shared, session, reason, context, object, &user.name);
    Err(CmdError::err(noperm(&denied, spec)))
}

fn object_of(denied: &Denied, spec: &Spec, argv: &Argv<'_>) -> (&'static str, String) {
    match denied {
        Denied::Command => ("command", spec.name.to_owned()),
        Denied::Key(i) => ("key", String::from_utf8_lossy(argv.get(*i)).into_owned()),
        Denied::Channel(i) => ("channel", String::from_utf8_lossy(argv.get(*i)).into_owned()),
    }
}

/// EXEC checks each queued command again, as redis-server does, in case the user's rules
/// changed after it was queued; a refused one answers this error in its slot of the reply.
pub fn recheck_in_exec(
    shared: &Shared,
    session: &Session,
    spec: &'static Spec,
    argv: &Argv<'_>,
) -> Result<(), CmdError> {
    let user = session_user(shared, session);
    if user.is_open() || spec.has(NO_AUTH) {
        return Ok(());
    }
    let Err(denied) = user.rules().check(spec, argv.len(), |i| argv.get(i)) else { return Ok(()) };
    let (kind, object) = object_of(&denied, spec, argv);
    log_denial(shared, session, kind, "multi", object, &user.name);
    let reason = match denied {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key(_) => "no permission to touch the specified keys",
        Denied::Channel(_) => "no permission to touch the specified channels",
    };
    Err(CmdError::err(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
    )))
}

/// The NOPERM reply for a denial, as redis-server 7.0 words it.
pub fn noperm(denied: &Denied, spec: &Spec) -> String {
    match denied {
        Denied::Command => format!("NOPERM this user has no permissions to run the '{}' command", spec.name),
        Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys used as arguments".to_owned(),
        Denied::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments".to_owned()
        }
    }
}

/// Adds an ACL LOG entry for this connection.
pub fn log_denial(
    shared: &Shared,
    session: &Session,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: &str,
) {
    let now = crate::server::shared::unix_ms();
    let entry = LogEntry {
        count: 1,
        reason,
        context,
        object,
        username: username.to_owned(),
        ctime: now,
        client_info: super::server::client_line(shared, &session.info, now).trim_end().to_owned(),
    };
    let max = shared.config().acllog_max_len;
    shared.acl.log(entry, max);
}

/// Makes `user` the session's user (AUTH, HELLO AUTH).
fn log_in(session: &mut Session, user: Arc<User>) {
    if let Ok(mut n) = session.info.user.lock() {
        *n = Arc::from(user.name.as_str());
    }
    session.user = Some(user);
    session.authenticated = true;
}

/// Back to the default user, authenticated as a new connection would be (RESET).
pub fn log_out(shared: &Shared, session: &mut Session) {
    if let Ok(mut n) = session.info.user.lock() {
        *n = Arc::from("default");
    }
    session.user = None;
    session.authenticated = shared.acl.default_is_open_door();
}

/// Authenticates `name`/`password` for AUTH and HELLO AUTH; a failure is logged with
/// `object` (the command name as the client wrote it) and answered WRONGPASS.
pub fn authenticate(ctx: &mut Ctx<'_>, name: &[u8], password: &[u8], object: &[u8]) -> Result<(), CmdError> {
    match ctx.shared.acl.authenticate(name, password) {
        Some(user) => {
            log_in(ctx.session, user);
            Ok(())
        }
        None => {
            let object = String::from_utf8_lossy(object).into_owned();
            let context = if ctx.session.tx.in_multi() { "multi" } else { "toplevel" };
            log_denial(ctx.shared, ctx.session, "auth", context, object, &String::from_utf8_lossy(name));
            Err(CmdError::err(WRONGPASS))
        }
    }
}

fn auth(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let (name, password): (&[u8], &[u8]) = if argv.len() == 2 {
        let nopass = ctx.shared.acl.default.rules().nopass;
        if nopass {
            return Err(CmdError::err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        (b"default", argv.get(1))
    } else {
        (argv.get(1), argv.get(2))
    };
    authenticate(ctx, name, password, argv.get(0))?;
    ctx.out.ok();
    Ok(())
}

fn acl_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let lines = [
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        // Not "Print": redis-server's ACL HELP words it so.
        "    Prints this help.",
    ];
    ctx.out.array(lines.len() + 1);
    ctx.out.simple(b"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    for l in lines {
        ctx.out.simple(l.as_bytes());
    }
    Ok(())
}

fn acl_cat(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() > 3 {
        return Err(sub_syntax(argv));
    }
    if argv.len() == 2 {
        ctx.out.array(category::NAMES.len());
        for n in category::NAMES {
            ctx.out.bulk(n.as_bytes());
        }
        return Ok(());
    }
    let Some(bit) = category::by_name(argv.get(2)) else {
        return Err(CmdError::err(format!("ERR Unknown category '{}'", super::excerpt(argv.get(2), 128))));
    };
    let names: Vec<&str> = acl::command_ids().iter().filter(|s| category::of(s) & bit != 0).map(|s| s.name).collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// redis-server's reply to a subcommand given too many arguments.
fn sub_syntax(argv: &Argv<'_>) -> CmdError {
    CmdError::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        super::excerpt(argv.get(1), 128)
    ))
}

fn valid_username(name: &[u8]) -> Result<&str, CmdError> {
    if name.iter().any(|&c| c == b' ' || c == 0) {
        return Err(CmdError::err("ERR Usernames can't contain spaces or null characters"));
    }
    std::str::from_utf8(name).map_err(|_| CmdError::err("ERR Usernames must be valid UTF-8 in cachette"))
}

fn acl_setuser(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let name = valid_username(argv.get(2))?;
    ctx.shared.acl.set_user(name, argv.rest(3)).map_err(|(op, e)| {
        CmdError::err(format!("ERR Error in ACL SETUSER modifier '{}': {}", String::from_utf8_lossy(&op), e.message()))
    })?;
    ctx.out.ok();
    Ok(())
}

fn acl_getuser(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let Some(user) = ctx.shared.acl.user(argv.get(2)) else {
        ctx.out.null();
        return Ok(());
    };
    let r = user.rules();
    ctx.out.map(6);
    ctx.out.bulk(b"flags");
    let flags = r.flag_names();
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"passwords");
    ctx.out.array(r.passwords.len());
    for p in &r.passwords {
        ctx.out.bulk(p.as_bytes());
    }
    ctx.out.bulk(b"commands");
    ctx.out.bulk(r.describe_commands().as_bytes());
    ctx.out.bulk(b"keys");
    ctx.out.bulk(r.describe_keys().as_bytes());
    ctx.out.bulk(b"channels");
    ctx.out.bulk(r.describe_channels().as_bytes());
    ctx.out.bulk(b"selectors");
    ctx.out.array(0);
    Ok(())
}

fn acl_deluser(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.rest(2).any(|n| n == b"default") {
        return Err(CmdError::err("ERR The 'default' user cannot be removed"));
    }
    let mut deleted = Vec::new();
    for name in argv.rest(2) {
        if ctx.shared.acl.delete_user(name) {
            deleted.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    disconnect_users(ctx, &deleted);
    ctx.out.int(deleted.len() as i64);
    Ok(())
}

/// Closes the connections authenticated as one of `names` (the current one after its reply),
/// as redis-server does when their user is deleted or replaced.
fn disconnect_users(ctx: &mut Ctx<'_>, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let me = ctx.session.info.id;
    let mut killed = 0;
    for (id, info) in ctx.shared.lock_clients().iter() {
        let user = info.user.lock().map(|u| u.to_string()).unwrap_or_default();
        if names.contains(&user) {
            if *id == me {
                ctx.session.close_after_reply = true;
            } else {
                info.kill.store(true, Ordering::Release);
                killed += 1;
            }
        }
    }
    if killed > 0 {
        ctx.shared.kill_generation.fetch_add(1, Ordering::AcqRel);
        ctx.shared.wake_all();
    }
}

fn acl_list(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let users = ctx.shared.acl.users();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(format!("user {} {}", u.name, u.rules().describe()).as_bytes());
    }
    Ok(())
}

fn acl_users(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let users = ctx.shared.acl.users();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(u.name.as_bytes());
    }
    Ok(())
}

fn acl_whoami(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let name = session_user(ctx.shared, ctx.session).name.clone();
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn acl_genpass(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() > 3 {
        return Err(sub_syntax(argv));
    }
    let bits = if argv.len() == 3 { int_arg(argv.get(2))? } else { 256 };
    if bits <= 0 || bits > 4096 {
        return Err(CmdError::err(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ));
    }
    let chars = (bits as usize).div_ceil(4);
    ctx.out.bulk(crate::server::shared::random_hex(chars).as_bytes());
    Ok(())
}

fn acl_log(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    if argv.len() > 3 {
        return Err(sub_syntax(argv));
    }
    let mut count = 10usize;
    if argv.len() == 3 {
        if is(argv.get(2), "reset") {
            ctx.shared.acl.log_reset();
            ctx.out.ok();
            return Ok(());
        }
        count = usize::try_from(int_arg(argv.get(2))?).unwrap_or(0);
    }
    let now = crate::server::shared::unix_ms();
    let entries = ctx.shared.acl.log_entries(count);
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.map(7);
        ctx.out.bulk(b"count");
        ctx.out.int(e.count as i64);
        ctx.out.bulk(b"reason");
        ctx.out.bulk(e.reason.as_bytes());
        ctx.out.bulk(b"context");
        ctx.out.bulk(e.context.as_bytes());
        ctx.out.bulk(b"object");
        ctx.out.bulk(e.object.as_bytes());
        ctx.out.bulk(b"username");
        ctx.out.bulk(e.username.as_bytes());
        ctx.out.bulk(b"age-seconds");
        ctx.out.double(now.saturating_sub(e.ctime) as f64 / 1000.0);
        ctx.out.bulk(b"client-info");
        ctx.out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}

fn acl_dryrun(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    let Some(user) = ctx.shared.acl.user(argv.get(2)) else {
        return Err(CmdError::err(format!("ERR User '{}' not found", super::excerpt(argv.get(2), 128))));
    };
    let line: Vec<&[u8]> = argv.rest(3).collect();
    let not_found = || CmdError::err(format!("ERR Command '{}' not found", super::excerpt(line[0], 128)));
    let top = super::lookup(line[0]).ok_or_else(not_found)?;
    let spec = if top.subcommands.is_empty() || line.len() < 2 {
        top
    } else {
        super::lookup_sub(top, line[1]).ok_or_else(not_found)?
    };
    if !spec.arity_ok(line.len()) {
        return Err(CmdError::err(format!("ERR wrong number of arguments for '{}' command", spec.name)));
    }
    match user.rules().check(spec, line.len(), |i| line[i]) {
        Ok(()) => ctx.out.ok(),
        Err(Denied::Command) => {
            ctx.out.bulk(format!("This user has no permissions to run the '{}' command", spec.name).as_bytes())
        }
        Err(Denied::Key(i)) => ctx.out.bulk(
            format!("This user has no permissions to access the '{}' key", String::from_utf8_lossy(line[i])).as_bytes(),
        ),
        Err(Denied::Channel(i)) => ctx.out.bulk(
            format!("This user has no permissions to access the '{}' channel", String::from_utf8_lossy(line[i]))
                .as_bytes(),
        ),
    }
    Ok(())
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn aclfile(ctx: &Ctx<'_>) -> Result<String, CmdError> {
    let f = ctx.shared.config().aclfile.clone();
    if f.is_empty() {
        return Err(CmdError::err(NO_ACLFILE));
    }
    Ok(f)
}

fn acl_load(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let path = aclfile(ctx)?;
    let replaced = load_file(ctx.shared, &path).map_err(|e| CmdError::err(format!("ERR {e}")))?;
    disconnect_users(ctx, &replaced);
    ctx.out.ok();
    Ok(())
}

/// Loads the aclfile at `path` into the server's users (start-up and ACL LOAD); returns the
/// users that were replaced.
pub fn load_file(shared: &Shared, path: &str) -> Result<Vec<String>, String> {
    let text =
        std::fs::read(path).map_err(|e| format!("Error loading ACLs, opening file '{path}': {}", os_reason(&e)))?;
    shared.acl.load(&String::from_utf8_lossy(&text), path)
}

/// The strerror text alone, as redis-server quotes it (Rust adds " (os error N)").
fn os_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn acl_save(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    let path = aclfile(ctx)?;
    let text = ctx.shared.acl.save_text();
    // Written aside and renamed, so a crash never leaves half a file where the users were.
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let saved = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = saved {
        let _ = std::fs::remove_file(&tmp);
        crate::server::log::log(crate::config::LogLevel::Warning, &format!("Saving the ACLs to '{path}' failed: {e}"));
        return Err(CmdError::err(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
        ));
    }
    ctx.out.ok();
    Ok(())
}
