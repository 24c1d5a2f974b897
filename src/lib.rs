//! cachette: one process serving Redis (RESP) and memcached clients over one keyspace.
//!
//! ```text
//!            main thread: signals, active-expiry cron, shutdown
//!                 │ spawns
//!   ┌─────────────┼──────────────┐
//!   worker 0     worker 1  ...  worker N-1      each: own mio::Poll, own SO_REUSEPORT
//!   │ Slab<Conn>  │               │              listeners (RESP + memcached), own conns
//!   │ read → codec (protocols/*) → command table (commands/, memcache/) → reply → write
//!   └──────────────┬──────────────┘
//!                  ▼
//!            engine::Engine: shards[hash(key)] behind a Mutex each; 16 dbs per shard
//! ```
//!
//! A request never leaves the worker thread that read it: it locks the shards of its keys,
//! does its work, appends its reply to the connection's output buffer and unlocks.

pub mod acl;
pub mod commands;
pub mod config;
pub mod engine;
pub mod glob;
pub mod memcache;
pub mod metrics;
pub mod persist;
pub mod replication;
pub mod server;
pub mod types;

#[global_allocator]
static ALLOCATOR: engine::memory::Counting = engine::memory::Counting;
