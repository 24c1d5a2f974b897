//! The one integration-test binary: every test here starts real servers (the `cachette` binary,
//! and for differential tests redis-server and memcached) on free loopback ports and talks to them
//! over TCP. Shared helpers live in `util`.

mod acl;
mod aof;
mod bad_input;
mod blocking;
mod blocking_race;
mod clients;
mod config_rewrite;
mod differential;
mod differential_binary;
mod docs;
mod introspection;
mod lifecycle;
mod memcache;
mod memcache_binary;
mod memcache_clients;
mod memory;
mod metrics;
mod multi;
mod operations;
mod persist;
mod prometheus;
mod pubsub;
mod redis_cli;
mod replication_primary;
mod replication_replica;
mod replication_wait;
mod resp;
mod sentinel;
mod sentinel_failover;
mod systemd;
mod util;
