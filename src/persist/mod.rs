//! Persistence: the append-only file (and, alongside it, the RDB snapshot).

pub mod aof;
