//! Value types stored in the keyspace. Each type lives in its own module; this one holds the
//! `Value` sum type the engine stores, and the helpers every type shares.
//!
//! Only strings exist so far; collections (list, hash, set, zset) are added as variants here
//! and as one module each.

pub mod string;

/// A stored value. Strings are binary safe; a memcached item is a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A Redis string / memcached item body.
    Str(Vec<u8>),
}

/// The Redis type name of a value, as `TYPE` answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string`
    String,
}

impl Kind {
    /// The name `TYPE` replies with, also used by `SCAN ... TYPE`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
        }
    }

    /// Parses a `SCAN ... TYPE` argument (case-insensitive, as redis-server).
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        if name.eq_ignore_ascii_case(b"string") {
            Some(Kind::String)
        } else {
            None
        }
    }
}

impl Value {
    /// This value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::String,
        }
    }

    /// The bytes of a string value; None for any other type (WRONGTYPE for Redis string
    /// commands, a miss for memcached).
    pub fn as_str(&self) -> Option<&Vec<u8>> {
        match self {
            Value::Str(s) => Some(s),
        }
    }

    /// The bytes of a string value, for in-place modification; None for any other type.
    pub fn as_str_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Value::Str(s) => Some(s),
        }
    }

    /// Approximate heap bytes the value owns (for memory accounting and MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.capacity(),
        }
    }
}
