//! Value types stored in the keyspace. Each type lives in its own module; this one holds the
//! `Value` sum type the engine stores, and the helpers every type shares.
//!
//! Every type keeps a compact representation for small values and switches to a general one
//! as it grows, the way redis-server's listpack/intset encodings do; `OBJECT ENCODING` reports
//! the name redis-server would use. A collection never stays stored empty: the command that
//! empties it deletes the key.

pub mod hash;
pub mod hll;
pub mod list;
pub mod set;
pub mod string;
pub mod zset;

/// A stored value. Strings are binary safe; a memcached item is a string.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A Redis string / memcached item body.
    Str(Vec<u8>),
    // Larger collections are boxed so that every entry in the keyspace pays only for the
    // biggest inline variant (a string's Vec, a hash's small header), not for a sorted set's.
    /// A list.
    List(Box<list::List>),
    /// A hash.
    Hash(hash::Hash),
    /// A set.
    Set(Box<set::Set>),
    /// A sorted set.
    ZSet(Box<zset::ZSet>),
}

/// The Redis type name of a value, as `TYPE` answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string`
    String,
    /// `list`
    List,
    /// `hash`
    Hash,
    /// `set`
    Set,
    /// `zset`
    ZSet,
}

impl Kind {
    /// The name `TYPE` replies with, also used by `SCAN ... TYPE`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
        }
    }

    /// Parses a `SCAN ... TYPE` argument (case-insensitive, as redis-server).
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        [Kind::String, Kind::List, Kind::Hash, Kind::Set, Kind::ZSet]
            .into_iter()
            .find(|k| name.eq_ignore_ascii_case(k.name().as_bytes()))
    }
}

impl Value {
    /// This value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::String,
            Value::List(_) => Kind::List,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
        }
    }

    /// The bytes of a string value; None for any other type (WRONGTYPE for Redis string
    /// commands, a miss for memcached).
    pub fn as_str(&self) -> Option<&Vec<u8>> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes of a string value, for in-place modification; None for any other type.
    pub fn as_str_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Approximate heap bytes the value owns (for memory accounting and MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.capacity(),
            Value::List(v) => v.heap_bytes(),
            Value::Hash(v) => v.heap_bytes(),
            Value::Set(v) => v.heap_bytes(),
            Value::ZSet(v) => v.heap_bytes(),
        }
    }
}
