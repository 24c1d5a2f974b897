//! Pub/Sub commands: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH, the sharded
//! SSUBSCRIBE SUNSUBSCRIBE SPUBLISH, and PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB.
//!
//! A connection's own subscriptions live in its [`Session`] ([`Subscriptions`]); the server-wide
//! registry and the delivery to other threads are `server::pubsub`. (Un)subscribe commands answer
//! one push per channel, as redis-server does, with the client's count of subscriptions after
//! it: channels plus patterns, or shard channels for the sharded commands.
//!
//! A RESP2 client with any subscription is in *subscribed mode*: only the commands
//! [`allowed_when_subscribed`] lists run (checked in `commands::execute`), and PING answers the
//! `pong` array. A RESP3 client may run anything, the messages arrive as `>` pushes.

use std::collections::HashSet;

use super::arg::*;
use super::flags::*;
use super::{container, excerpt, spec, Argv, CmdError, Ctx, Session, Spec};
use crate::server::pubsub::{Kind, Publisher, Subscriber};
use crate::server::Shared;

/// This family's table entries.
#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    spec("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "O(N) where N is the number of channels to subscribe to.", "Listen for messages published to the given channels", subscribe).args(&[string("channel").multiple()]),
    spec("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "O(N) where N is the number of clients already subscribed to a channel.", "Stop listening for messages posted to the given channels", unsubscribe).args(&[string("channel").optional().multiple()]),
    spec("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "O(N) where N is the number of patterns the client is already subscribed to.", "Listen for messages published to channels matching the given patterns", psubscribe).args(&[block("pattern", &[pattern("pattern")]).multiple()]),
    spec("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).", "Stop listening for messages posted to channels matching the given patterns", punsubscribe).args(&[pattern("pattern").optional().multiple()]),
    spec("publish", 3, PUBSUB | LOADING | STALE | FAST, (0, 0, 0), "pubsub", "2.0.0", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).", "Post a message to a channel", publish).args(&[string("channel"), string("message")]),
    spec("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (1, -1, 1), "pubsub", "7.0.0", "O(N) where N is the number of shard channels to subscribe to.", "Listen for messages published to the given shard channels", ssubscribe).args(&[string("shardchannel").multiple()]),
    spec("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (1, -1, 1), "pubsub", "7.0.0", "O(N) where N is the number of clients already subscribed to a shard channel.", "Stop listening for messages posted to the given shard channels", sunsubscribe).args(&[string("shardchannel").optional().multiple()]),
    spec("spublish", 3, PUBSUB | LOADING | STALE | FAST, (1, 1, 1), "pubsub", "7.0.0", "O(N) where N is the number of clients subscribed to the receiving shard channel.", "Post a message to a shard channel", spublish).args(&[string("shardchannel"), string("message")]),
    container("pubsub", -2, "pubsub", "2.8.0", "A container for Pub/Sub commands", PUBSUB_SUBCOMMANDS),
];

#[rustfmt::skip]
const PUBSUB_SUBCOMMANDS: &[Spec] = &[
    spec("pubsub|channels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), "pubsub", "2.8.0", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)", "List active channels", pubsub_channels).args(&[pattern("pattern").optional()]),
    spec("pubsub|numsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), "pubsub", "2.8.0", "O(N) for the NUMSUB subcommand, where N is the number of requested channels", "Get the count of subscribers for channels", pubsub_numsub).args(&[string("channel").optional().multiple()]),
    spec("pubsub|numpat", 2, PUBSUB | LOADING | STALE, (0, 0, 0), "pubsub", "2.8.0", "O(1)", "Get the count of unique patterns pattern subscriptions", pubsub_numpat),
    spec("pubsub|help", 2, LOADING | STALE, (0, 0, 0), "pubsub", "6.2.0", "O(1)", "Show helpful text about the different subcommands", pubsub_help),
    spec("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), "pubsub", "7.0.0", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels", "Get the count of subscribers for shard channels", pubsub_shardnumsub).args(&[string("shardchannel").optional().multiple()]),
    spec("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), "pubsub", "7.0.0", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).", "List active shard channels", pubsub_shardchannels).args(&[pattern("pattern").optional()]),
];

/// One connection's subscriptions (the registry in `Shared` mirrors them).
#[derive(Default, Debug)]
pub struct Subscriptions {
    /// SUBSCRIBE channels.
    pub channels: HashSet<Vec<u8>>,
    /// PSUBSCRIBE patterns.
    pub patterns: HashSet<Vec<u8>>,
    /// SSUBSCRIBE shard channels.
    pub shard: HashSet<Vec<u8>>,
}

impl Subscriptions {
    /// True with any subscription: the client is in subscribed mode (and of the pubsub class
    /// for output buffer limits).
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }

    /// Publishes the counts to the client's shared record (CLIENT LIST).
    fn publish_counts(&self, info: &crate::server::ClientInfo) {
        use std::sync::atomic::Ordering::Relaxed;
        info.subs[0].store(self.channels.len(), Relaxed);
        info.subs[1].store(self.patterns.len(), Relaxed);
        info.subs[2].store(self.shard.len(), Relaxed);
    }

    fn set(&mut self, kind: Kind) -> &mut HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The count a (un)subscribe reply carries.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }
}

/// Commands a RESP2 client in subscribed mode may run.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The error for any other command then, worded as redis-server words it.
pub fn not_allowed_when_subscribed(name: &str) -> CmdError {
    CmdError::err(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Drops every subscription of the session (disconnect, RESET), without replies.
pub fn leave_all(shared: &Shared, session: &mut Session) {
    let id = session.info.id;
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in std::mem::take(session.subs.set(kind)) {
            shared.pubsub.unsubscribe(kind, &name, id);
        }
    }
    session.subs.publish_counts(&session.info);
}

fn words(kind: Kind) -> (&'static [u8], &'static [u8]) {
    match kind {
        Kind::Channel => (b"subscribe", b"unsubscribe"),
        Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

fn confirm(ctx: &mut Ctx<'_>, word: &[u8], name: Option<&[u8]>, kind: Kind) {
    ctx.out.push(3);
    ctx.out.bulk(word);
    match name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    ctx.out.int(ctx.session.subs.count(kind) as i64);
}

fn subscribe_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, kind: Kind) -> Result<(), CmdError> {
    let (word, _) = words(kind);
    for name in argv.rest(1) {
        if ctx.session.subs.set(kind).insert(name.to_vec()) {
            let info = ctx.session.info.clone();
            let sub = Subscriber { id: info.id, worker: ctx.session.worker, info };
            ctx.shared.pubsub.subscribe(kind, name, sub);
        }
        confirm(ctx, word, Some(name), kind);
    }
    ctx.session.subs.publish_counts(&ctx.session.info);
    Ok(())
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, kind: Kind) -> Result<(), CmdError> {
    let (_, word) = words(kind);
    let id = ctx.session.info.id;
    let names: Vec<Vec<u8>> = if argv.len() > 1 {
        argv.rest(1).map(<[u8]>::to_vec).collect()
    } else {
        ctx.session.subs.set(kind).iter().cloned().collect()
    };
    if names.is_empty() {
        confirm(ctx, word, None, kind);
    }
    for name in names {
        if ctx.session.subs.set(kind).remove(&name) {
            ctx.shared.pubsub.unsubscribe(kind, &name, id);
        }
        confirm(ctx, word, Some(&name), kind);
    }
    ctx.session.subs.publish_counts(&ctx.session.info);
    Ok(())
}

fn subscribe(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    subscribe_generic(ctx, argv, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    subscribe_generic(ctx, argv, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    subscribe_generic(ctx, argv, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    unsubscribe_generic(ctx, argv, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    unsubscribe_generic(ctx, argv, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    unsubscribe_generic(ctx, argv, Kind::Shard)
}

fn publish_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, kind: Kind) -> Result<(), CmdError> {
    let id = ctx.session.info.id;
    let shared = ctx.shared;
    let publisher = Publisher { id, worker: ctx.session.worker, out: &mut ctx.session.pushes };
    let n = shared.pubsub.publish(shared, kind, argv.get(1), argv.get(2), Some(publisher));
    ctx.flush_pushes();
    ctx.out.int(n as i64);
    Ok(())
}

fn publish(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    publish_generic(ctx, argv, Kind::Channel)
}

fn spublish(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    publish_generic(ctx, argv, Kind::Shard)
}

fn syntax_error(argv: &Argv<'_>) -> CmdError {
    CmdError::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        excerpt(argv.get(1), 128)
    ))
}

fn channels_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, kind: Kind) -> Result<(), CmdError> {
    if argv.len() > 3 {
        return Err(syntax_error(argv));
    }
    let pattern = (argv.len() == 3).then(|| argv.get(2));
    let names = ctx.shared.pubsub.names(kind, pattern);
    ctx.out.array(names.len());
    for n in &names {
        ctx.out.bulk(n);
    }
    Ok(())
}

fn numsub_generic(ctx: &mut Ctx<'_>, argv: &Argv<'_>, kind: Kind) -> Result<(), CmdError> {
    ctx.out.array((argv.len() - 2) * 2);
    for name in argv.rest(2) {
        ctx.out.bulk(name);
        ctx.out.int(ctx.shared.pubsub.count(kind, name) as i64);
    }
    Ok(())
}

fn pubsub_channels(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    channels_generic(ctx, argv, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    channels_generic(ctx, argv, Kind::Shard)
}

fn pubsub_numsub(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    numsub_generic(ctx, argv, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, argv: &Argv<'_>) -> Result<(), CmdError> {
    numsub_generic(ctx, argv, Kind::Shard)
}

fn pubsub_numpat(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    ctx.out.int(ctx.shared.pubsub.pattern_count() as i64);
    Ok(())
}

fn pubsub_help(ctx: &mut Ctx<'_>, _argv: &Argv<'_>) -> Result<(), CmdError> {
    const LINES: &[&str] = &[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l.as_bytes());
    }
    Ok(())
}
