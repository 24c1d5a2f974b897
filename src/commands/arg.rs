//! Command syntax as data: the `arguments` of COMMAND DOCS.
//!
//! Each [`super::Spec`] carries its arguments as a `&'static [Arg]`, written with the const
//! constructors below so a whole syntax reads like the command line it describes:
//!
//! ```text
//! SET key value [NX|XX] [GET] [EX seconds|…|KEEPTTL]
//! &[key("key"), string("value"), oneof("condition", &[pure("NX"), pure("XX")]).optional(), …]
//! ```
//!
//! They are interface facts, not implementation: redis-cli builds its typing hints from them,
//! and client libraries and tools read them, so each list matches redis-server 7.0's reply field
//! for field (the integration test `docs` compares them against a real redis-server). The
//! handlers do their own parsing; nothing here drives it.

/// What an argument is, named as COMMAND DOCS names it ([`ArgKind::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A key name.
    Key,
    /// Any string.
    String,
    /// An integer.
    Integer,
    /// A floating point number.
    Double,
    /// A glob-style pattern.
    Pattern,
    /// A unix timestamp (seconds or milliseconds, as the name says).
    UnixTime,
    /// A literal token with no value of its own (`NX`, `GET`).
    PureToken,
    /// Exactly one of the nested arguments.
    OneOf,
    /// The nested arguments, in order, as one unit.
    Block,
}

impl ArgKind {
    /// The `type` string of COMMAND DOCS.
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::Key => "key",
            ArgKind::String => "string",
            ArgKind::Integer => "integer",
            ArgKind::Double => "double",
            ArgKind::Pattern => "pattern",
            ArgKind::UnixTime => "unix-time",
            ArgKind::PureToken => "pure-token",
            ArgKind::OneOf => "oneof",
            ArgKind::Block => "block",
        }
    }
}

/// May be left out.
pub const OPTIONAL: u8 = 1 << 0;
/// May be repeated.
pub const MULTIPLE: u8 = 1 << 1;
/// Each repetition repeats the token too (`PREFIX a PREFIX b`).
pub const MULTIPLE_TOKEN: u8 = 1 << 2;

/// (flag, name) pairs in the order redis-server lists them.
pub const FLAG_NAMES: &[(u8, &str)] =
    &[(OPTIONAL, "optional"), (MULTIPLE, "multiple"), (MULTIPLE_TOKEN, "multiple_token")];

/// One argument of a command's syntax.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// The name redis-server gives it; empty for a pure token, which is named after its token
    /// in lower case ([`Arg::name`]).
    name: &'static str,
    /// Its type.
    pub kind: ArgKind,
    /// For keys: which key spec of the command describes it (0 for the first key, …).
    pub key_spec_index: Option<u8>,
    /// The literal that introduces it (`EX` in `EX seconds`), if any.
    pub token: Option<&'static str>,
    /// The Redis version that added it, when later than the command itself.
    pub since: Option<&'static str>,
    /// The Redis version that deprecated it (CLIENT KILL's old `ip:port` form).
    pub deprecated_since: Option<&'static str>,
    /// Bit set of [`OPTIONAL`], [`MULTIPLE`], [`MULTIPLE_TOKEN`].
    pub flags: u8,
    /// The alternatives of a oneof, the members of a block; empty otherwise.
    pub args: &'static [Arg],
}

const fn arg(name: &'static str, kind: ArgKind) -> Arg {
    Arg { name, kind, key_spec_index: None, token: None, since: None, deprecated_since: None, flags: 0, args: &[] }
}

/// A key described by the command's first key spec; see [`Arg::key_spec`] for the others.
pub const fn key(name: &'static str) -> Arg {
    Arg { key_spec_index: Some(0), ..arg(name, ArgKind::Key) }
}

/// A string argument.
pub const fn string(name: &'static str) -> Arg {
    arg(name, ArgKind::String)
}

/// An integer argument.
pub const fn integer(name: &'static str) -> Arg {
    arg(name, ArgKind::Integer)
}

/// A floating point argument.
pub const fn double(name: &'static str) -> Arg {
    arg(name, ArgKind::Double)
}

/// A glob-style pattern argument.
pub const fn pattern(name: &'static str) -> Arg {
    arg(name, ArgKind::Pattern)
}

/// A unix timestamp argument.
pub const fn unix_time(name: &'static str) -> Arg {
    arg(name, ArgKind::UnixTime)
}

/// A pure token such as `NX`; redis-server names it after the token in lower case.
pub const fn pure(token: &'static str) -> Arg {
    Arg { token: Some(token), ..arg("", ArgKind::PureToken) }
}

/// Exactly one of `alternatives`.
pub const fn oneof(name: &'static str, alternatives: &'static [Arg]) -> Arg {
    Arg { args: alternatives, ..arg(name, ArgKind::OneOf) }
}

/// `members` in order, as one unit.
pub const fn block(name: &'static str, members: &'static [Arg]) -> Arg {
    Arg { args: members, ..arg(name, ArgKind::Block) }
}

impl Arg {
    /// The argument's name (a pure token's is its token in lower case).
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        match (self.name, self.token) {
            ("", Some(t)) => t.to_ascii_lowercase().into(),
            (n, _) => n.into(),
        }
    }

    /// Introduced by `token` (`integer("seconds").token("EX")`).
    pub const fn token(self, token: &'static str) -> Arg {
        Arg { token: Some(token), ..self }
    }

    /// Named `name` where redis-server names a pure token apart from its token (ZADD's `CH` is
    /// `change`).
    pub const fn named(self, name: &'static str) -> Arg {
        Arg { name, ..self }
    }

    /// Added in Redis `version`.
    pub const fn since(self, version: &'static str) -> Arg {
        Arg { since: Some(version), ..self }
    }

    /// Deprecated in Redis `version`.
    pub const fn deprecated(self, version: &'static str) -> Arg {
        Arg { deprecated_since: Some(version), ..self }
    }

    /// A key described by the command's key spec `index` (RENAME's `newkey` is 1).
    pub const fn key_spec(self, index: u8) -> Arg {
        Arg { key_spec_index: Some(index), ..self }
    }

    /// May be left out.
    pub const fn optional(self) -> Arg {
        Arg { flags: self.flags | OPTIONAL, ..self }
    }

    /// May be repeated.
    pub const fn multiple(self) -> Arg {
        Arg { flags: self.flags | MULTIPLE, ..self }
    }

    /// May be repeated, token included.
    pub const fn multiple_token(self) -> Arg {
        Arg { flags: self.flags | MULTIPLE_TOKEN, ..self }
    }
}

// ---- syntaxes many commands share ------------------------------------------------------

/// `key` (GET, TTL, INCR, …).
pub const ONE_KEY: &[Arg] = &[key("key")];
/// `key [key ...]` (DEL, EXISTS, MGET, …).
pub const KEYS: &[Arg] = &[key("key").multiple()];
/// `key value` (SETNX, GETSET, APPEND).
pub const KEY_VALUE: &[Arg] = &[key("key"), string("value")];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_compose() {
        const A: Arg = pure("NX").since("7.0.0").optional().multiple();
        assert_eq!(A.name(), "nx");
        assert_eq!((A.kind, A.token, A.since, A.flags), (ArgKind::PureToken, Some("NX"), Some("7.0.0"), 3));
        const K: Arg = key("newkey").key_spec(1);
        assert_eq!((K.name(), K.key_spec_index, K.kind.name()), ("newkey".into(), Some(1), "key"));
        assert_eq!(integer("seconds").token("EX").name(), "seconds");
    }
}
