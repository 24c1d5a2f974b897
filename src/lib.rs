//! cachette: one process serving Redis (RESP) and memcached clients over one keyspace.
pub mod placeholder {}
