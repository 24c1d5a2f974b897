//! Configuration: the directive table, defaults, redis.conf-style files, the command line, and
//! the CONFIG GET / CONFIG SET semantics of redis-server 7.
//!
//! ```text
//!   table.rs  DIRECTIVES: name, aliases, type + bounds, default, mutable?, doc, field
//!                 |
//!     +-----------+--------------+--------------------+---------------------+
//!     v           v              v                    v                     v
//!  Default    file.rs         cli.rs              Config::get          Config::set_many
//!  (defaults) (conf text)    (--name value,       (CONFIG GET glob)    (CONFIG SET, atomic)
//!                             -t/-c/-I/-l, help)
//! ```
//!
//! CONFIG REWRITE (`rewrite.rs`) goes the other way: the table's current values back into the
//! config file, in place, as redis-server rewrites a redis.conf.
//!
//! Start-up is `from_args`: defaults, then the config file, then command-line directives, then
//! [`Config::validate`]. The result is plain data handed to `server::run`; the server decides how
//! runtime changes (CONFIG SET on the directives marked mutable) reach its threads.
//!
//! Deliberate differences from redis-server, each because cachette cannot honour the setting yet
//! rather than to be different: `port` and `bind` are immutable (listeners are not re-bound at
//! runtime); `databases` stops at 16; `daemonize` and `supervised` are accepted only as `no`; and
//! every other redis.conf directive stops start-up with a message naming it instead of being
//! ignored. `loglevel` also takes `nothing` (as Redis 7.2 does).

mod cli;
mod file;
pub mod rewrite;
mod splitargs;
mod table;

use std::fmt;
use std::path::PathBuf;

use crate::glob::glob_match;

/// Splits a line into words with the config file's quoting rules (the AOF manifest uses them).
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let words = splitargs::split_args(line.as_bytes())?;
    Some(words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect())
}

pub use cli::{from_args, parse_args, Invocation};
pub use file::parse_file_text;
pub use table::{lookup, parse_memory, DefaultValue, Directive, Kind, DIRECTIVES};

/// The server's configuration. Plain data: every field is a directive of the table (see
/// `conf/cachette.conf` for each one's meaning) except `config_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `bind`: addresses to listen on, as written (a leading `-` marks one optional; see
    /// [`Config::bind_addrs`]).
    pub bind: Vec<String>,
    /// `port`: RESP listener port; 0 disables it.
    pub port: u16,
    /// `memcache-port`: memcached listener port; 0 disables it.
    pub memcache_port: u16,
    /// `threads`: worker threads.
    pub threads: usize,
    /// `timeout`: idle seconds before a client is closed; 0 = never.
    pub timeout: u64,
    /// `tcp-backlog`: listen(2) backlog.
    pub tcp_backlog: u32,
    /// `tcp-keepalive`: keepalive interval in seconds; 0 = off.
    pub tcp_keepalive: u64,
    /// `databases`: number of Redis databases (1..=16).
    pub databases: usize,
    /// `maxclients`: connected clients limit.
    pub maxclients: usize,
    /// `proto-max-bulk-len`: largest RESP bulk string, bytes.
    pub proto_max_bulk_len: usize,
    /// `client-query-buffer-limit`: most unparsed input per client, bytes.
    pub client_query_buffer_limit: usize,
    /// `memcache-item-size-max`: largest memcached value, bytes (memcached `-I`).
    pub item_size_max: usize,
    /// `memcache-sasl`: SASL authentication required on the memcached port (memcached `-S`).
    pub memcache_sasl: bool,
    /// `memcache-sasl-pwdb`: the `user:password` file SASL checks against.
    pub memcache_sasl_pwdb: String,
    /// `memcache-cas`: items get CAS uniques (memcached `-C` turns this off).
    pub memcache_cas: bool,
    /// `memcache-enable-shutdown`: the memcached `shutdown` command works (memcached `-A`).
    pub memcache_enable_shutdown: bool,
    /// `memcache-protocol`: what the memcached port speaks (memcached `-B`).
    pub memcache_protocol: MemcacheProtocol,
    /// `hz`: background task frequency, always within 1..=500.
    pub hz: u32,
    /// `active-expire-effort`: 1..=10.
    pub active_expire_effort: u32,
    /// `busy-poll-us`: how long a busy worker polls without sleeping (0 = never).
    pub busy_poll_us: u64,
    /// `metrics-port` (0 = no metrics endpoint).
    pub metrics_port: u16,
    /// `metrics-bind`.
    pub metrics_bind: String,
    /// `metrics-names`: index into [`crate::metrics::Families::NAMES`].
    pub metrics_names: usize,
    /// `maxmemory` (bytes; 0 = no limit).
    pub maxmemory: usize,
    /// `maxmemory-policy`.
    pub maxmemory_policy: crate::engine::evict::Policy,
    /// `maxmemory-samples`.
    pub maxmemory_samples: u32,
    /// `maxmemory-eviction-tenacity`.
    pub maxmemory_eviction_tenacity: u32,
    /// `lfu-log-factor`.
    pub lfu_log_factor: u32,
    /// `lfu-decay-time` (minutes).
    pub lfu_decay_time: u32,
    /// `save`: snapshot save points, (seconds, changes).
    pub save: Vec<(u64, u64)>,
    /// `dir`: absolute directory of the snapshot.
    pub dir: String,
    /// `dbfilename`: the snapshot's file name.
    pub dbfilename: String,
    /// `rdbcompression`.
    pub rdbcompression: bool,
    /// `rdbchecksum`.
    pub rdbchecksum: bool,
    /// `stop-writes-on-bgsave-error`.
    pub stop_writes_on_bgsave_error: bool,
    /// `rdb-save-incremental-fsync`.
    pub rdb_save_incremental_fsync: bool,
    /// `rdb-key-save-delay`: microseconds a save child sleeps per key (tests).
    pub rdb_key_save_delay: u64,
    /// `bgsave_cpulist`: CPUs for the background save child ("" = inherited).
    pub bgsave_cpulist: String,
    /// `aof_rewrite_cpulist`: CPUs for the AOF rewrite child ("" = inherited).
    pub aof_rewrite_cpulist: String,
    /// `slowlog-log-slower-than`: microseconds; -1 = off, 0 = every command.
    pub slowlog_log_slower_than: i64,
    /// `slowlog-max-len`: entries kept.
    pub slowlog_max_len: u64,
    /// `latency-monitor-threshold`: milliseconds; 0 = off.
    pub latency_monitor_threshold: u64,
    /// `latency-tracking`: per-command latency histograms.
    pub latency_tracking: bool,
    /// `enable-debug-command`: 0 no, 1 yes, 2 local.
    pub enable_debug_command: u8,
    /// `loglevel`.
    pub loglevel: LogLevel,
    /// `logfile`: empty means standard error.
    pub logfile: String,
    /// `appendonly`.
    pub appendonly: bool,
    /// `appendfilename`.
    pub appendfilename: String,
    /// `appenddirname`.
    pub appenddirname: String,
    /// `appendfsync`.
    pub appendfsync: crate::persist::aof::Fsync,
    /// `aof-load-truncated`.
    pub aof_load_truncated: bool,
    /// `aof-use-rdb-preamble`: AOF bases are RDB images.
    pub aof_use_rdb_preamble: bool,
    /// `auto-aof-rewrite-percentage` (0 = no automatic rewrite).
    pub auto_aof_rewrite_percentage: u32,
    /// `auto-aof-rewrite-min-size` (bytes).
    pub auto_aof_rewrite_min_size: usize,
    /// `protected-mode`.
    pub protected_mode: bool,
    /// `requirepass`: the default user's password; empty for none.
    pub requirepass: String,
    /// `aclfile`: where ACL LOAD / ACL SAVE read and write users; empty for none.
    pub aclfile: String,
    /// `acllog-max-len`.
    pub acllog_max_len: usize,
    /// `user` directives, each the words after `user` (several lines accumulate).
    pub users: Vec<Vec<String>>,
    /// `notify-keyspace-events`: the enabled classes (`commands::notify` flags).
    pub notify_keyspace_events: u32,
    /// `client-output-buffer-limit`, indexed by [`ClientClass`].
    pub client_output_buffer_limit: [ObufLimit; 3],
    /// `replicaof`: `host port` of the master, or empty on a master (see [`Config::master`]).
    pub replicaof: String,
    /// `masterauth`: the password sent with AUTH to the master; empty for none.
    pub masterauth: String,
    /// `masteruser`: the ACL user AUTH names with `masterauth`; empty for the default user.
    pub masteruser: String,
    /// `replica-read-only`.
    pub replica_read_only: bool,
    /// `replica-serve-stale-data`.
    pub replica_serve_stale_data: bool,
    /// `replica-ignore-maxmemory`.
    pub replica_ignore_maxmemory: bool,
    /// `repl-backlog-size` (bytes).
    pub repl_backlog_size: usize,
    /// `repl-backlog-ttl` (seconds; 0 = never freed).
    pub repl_backlog_ttl: u64,
    /// `repl-diskless-sync`.
    pub repl_diskless_sync: bool,
    /// `repl-diskless-sync-delay` (seconds).
    pub repl_diskless_sync_delay: u64,
    /// `repl-diskless-sync-max-replicas` (0 = no limit).
    pub repl_diskless_sync_max_replicas: u64,
    /// `repl-ping-replica-period` (seconds).
    pub repl_ping_replica_period: u64,
    /// `repl-timeout` (seconds).
    pub repl_timeout: u64,
    /// `replica-priority`: how redis-sentinel ranks this server as a failover candidate (lower
    /// first; 0 never). Only reported (INFO replication `slave_priority`).
    pub replica_priority: u32,
    /// `replica-announce-ip`: the address a replica reports to its primary instead of the
    /// connection's; empty for the connection's.
    pub replica_announce_ip: String,
    /// `replica-announce-port`: the port a replica reports to its primary; 0 for `port`.
    pub replica_announce_port: u16,
    /// `replica-announced`: whether redis-sentinel should list this replica.
    pub replica_announced: bool,
    /// `min-replicas-to-write`: writes are refused with fewer good replicas (0 = off).
    pub min_replicas_to_write: u32,
    /// `min-replicas-max-lag`: seconds since its last ACK for a replica to count as good.
    pub min_replicas_max_lag: u32,
    /// The config file this was loaded from, made absolute; `None` when started without one.
    pub config_file: Option<PathBuf>,
}

impl Config {
    /// The master `replicaof` names: (host, port), or None on a master.
    pub fn master(&self) -> Option<(String, u16)> {
        let (host, port) = self.replicaof.rsplit_once(' ')?;
        Some((host.to_owned(), port.parse().ok()?))
    }

    /// The memory directives, as the engine takes them.
    pub fn memory_settings(&self) -> crate::engine::evict::Settings {
        crate::engine::evict::Settings {
            maxmemory: self.maxmemory as u64,
            policy: self.maxmemory_policy,
            samples: self.maxmemory_samples,
            tenacity: self.maxmemory_eviction_tenacity,
            lfu_log_factor: self.lfu_log_factor,
            lfu_decay_time: self.lfu_decay_time,
        }
    }
}

impl Default for Config {
    /// Every directive at its table default (`threads` = online CPUs).
    fn default() -> Self {
        let mut config = Config {
            bind: Vec::new(),
            port: 0,
            memcache_port: 0,
            threads: 1,
            timeout: 0,
            tcp_backlog: 0,
            tcp_keepalive: 0,
            databases: 1,
            maxclients: 1,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            item_size_max: 0,
            memcache_sasl: false,
            memcache_sasl_pwdb: String::new(),
            memcache_cas: true,
            memcache_enable_shutdown: false,
            memcache_protocol: MemcacheProtocol::Auto,
            hz: 1,
            active_expire_effort: 1,
            busy_poll_us: 0,
            metrics_port: 0,
            metrics_bind: String::new(),
            metrics_names: 0,
            maxmemory: 0,
            maxmemory_policy: crate::engine::evict::Policy::NoEviction,
            maxmemory_samples: 1,
            maxmemory_eviction_tenacity: 0,
            lfu_log_factor: 0,
            lfu_decay_time: 0,
            save: Vec::new(),
            dir: String::new(),
            dbfilename: String::new(),
            rdbcompression: false,
            rdbchecksum: false,
            stop_writes_on_bgsave_error: false,
            rdb_save_incremental_fsync: false,
            rdb_key_save_delay: 0,
            bgsave_cpulist: String::new(),
            aof_rewrite_cpulist: String::new(),
            slowlog_log_slower_than: 0,
            slowlog_max_len: 0,
            latency_monitor_threshold: 0,
            latency_tracking: false,
            enable_debug_command: 0,
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            appendonly: false,
            appendfilename: String::new(),
            appenddirname: String::new(),
            appendfsync: crate::persist::aof::Fsync::EverySec,
            aof_load_truncated: false,
            aof_use_rdb_preamble: false,
            auto_aof_rewrite_percentage: 0,
            auto_aof_rewrite_min_size: 0,
            protected_mode: true,
            requirepass: String::new(),
            aclfile: String::new(),
            acllog_max_len: 0,
            users: Vec::new(),
            notify_keyspace_events: 0,
            client_output_buffer_limit: Default::default(),
            replicaof: String::new(),
            masterauth: String::new(),
            masteruser: String::new(),
            replica_read_only: false,
            replica_serve_stale_data: false,
            replica_ignore_maxmemory: false,
            repl_backlog_size: 0,
            repl_backlog_ttl: 0,
            repl_diskless_sync: false,
            repl_diskless_sync_delay: 0,
            repl_diskless_sync_max_replicas: 0,
            repl_ping_replica_period: 0,
            repl_timeout: 0,
            replica_priority: 0,
            replica_announce_ip: String::new(),
            replica_announce_port: 0,
            replica_announced: false,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 0,
            config_file: None,
        };
        for directive in DIRECTIVES {
            // Table defaults are checked by a test, so this cannot fail in a tested build.
            let applied = directive.apply_default(&mut config);
            debug_assert!(applied.is_ok(), "default of {}: {applied:?}", directive.name);
        }
        config
    }
}

/// `loglevel`, least to most severe; a message is logged when its level is at least this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
    /// Log nothing at all.
    Nothing,
}

impl LogLevel {
    /// Every level, in the order of [`LogLevel::NAMES`].
    pub const ALL: [LogLevel; 5] =
        [LogLevel::Debug, LogLevel::Verbose, LogLevel::Notice, LogLevel::Warning, LogLevel::Nothing];
    /// The directive's words, indexed by `level as usize`.
    pub const NAMES: [&'static str; 5] = ["debug", "verbose", "notice", "warning", "nothing"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// `memcache-protocol` (memcached `-B`): which protocols the memcached port accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemcacheProtocol {
    /// Text and meta only.
    Ascii,
    /// Binary only.
    Binary,
    /// Chosen per connection by its first byte (0x80: binary), as memcached does by default.
    Auto,
}

impl MemcacheProtocol {
    /// Every value, in the order of [`MemcacheProtocol::NAMES`].
    pub const ALL: [MemcacheProtocol; 3] = [MemcacheProtocol::Ascii, MemcacheProtocol::Binary, MemcacheProtocol::Auto];
    /// The directive's words (memcached -B's).
    pub const NAMES: [&'static str; 3] = ["ascii", "binary", "auto"];

    /// What memcached's `stats settings` prints as `binding_protocol`.
    pub fn stats_name(self) -> &'static str {
        match self {
            MemcacheProtocol::Ascii => "ascii",
            MemcacheProtocol::Binary => "binary",
            MemcacheProtocol::Auto => "auto-negotiate",
        }
    }
}

/// A CONFIG SET failure, worded as redis-server words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

/// One class's output buffer limit (`client-output-buffer-limit <class> <hard> <soft> <secs>`):
/// a client is disconnected when its pending output passes `hard`, or stays above `soft` for
/// `soft_secs` seconds. Zero disables a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObufLimit {
    /// Bytes; 0 = none.
    pub hard: u64,
    /// Bytes; 0 = none.
    pub soft: u64,
    /// Seconds the soft limit may be exceeded.
    pub soft_secs: u64,
}

/// The client classes output buffer limits apply to, as indexes of
/// `Config::client_output_buffer_limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientClass {
    /// Ordinary clients.
    Normal = 0,
    /// Replicas.
    Replica = 1,
    /// Clients subscribed to a channel, pattern or shard channel.
    PubSub = 2,
}

impl ConfigError {
    /// The complete error reply text without the leading `-`, e.g.
    /// `ERR Unknown option or number of arguments for CONFIG SET - 'foo'`.
    pub fn message(&self) -> &str {
        &self.0
    }

    fn failed(argument: &str, reason: &str) -> Self {
        ConfigError(format!("ERR CONFIG SET failed (possibly related to argument '{argument}') - {reason}"))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// One `bind` entry, ready to resolve and listen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindAddr<'a> {
    /// Host to listen on: an IP literal or host name; `*` and `::*` already turned into
    /// `0.0.0.0` and `::`.
    pub host: &'a str,
    /// Written with a leading `-`: if it cannot be bound (say, no IPv6 on this host), skip it
    /// with a warning instead of failing start-up.
    pub optional: bool,
}

impl Config {
    /// CONFIG GET with one pattern: every directive (or alias) whose name matches the glob,
    /// case-insensitively, in table order, with its value formatted as redis-server formats it.
    /// As in Redis, a pattern without `*`, `?` or `[` is an exact (case-insensitive) name lookup,
    /// not a glob, so `\` in it is not an escape.
    pub fn get(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            return lookup(pattern).map(|(directive, name)| vec![(name, directive.value(self))]).unwrap_or_default();
        }
        let mut found = Vec::new();
        for directive in DIRECTIVES.iter().filter(|d| !table::HIDDEN.contains(&d.name)) {
            for name in std::iter::once(&directive.name).chain(directive.aliases) {
                if glob_match(pattern, name.as_bytes(), true) {
                    found.push((*name, directive.value(self)));
                }
            }
        }
        found
    }

    /// CONFIG GET with several patterns (Redis 7): the union of [`Config::get`] over them, each
    /// name once. Like Redis, a name looked up exactly is answered under the spelling the client
    /// used (`CONFIG GET PORT` replies `PORT`).
    pub fn get_many(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = Vec::new();
        for pattern in patterns {
            let exact = !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
            for (name, value) in self.get(pattern) {
                let name = if exact { String::from_utf8_lossy(pattern).into_owned() } else { name.into() };
                if !found.iter().any(|(seen, _)| seen.eq_ignore_ascii_case(&name)) {
                    found.push((name, value));
                }
            }
        }
        found
    }

    /// CONFIG SET of one directive; see [`Config::set_many`].
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), ConfigError> {
        self.set_many(&[(name, value)])
    }

    /// CONFIG SET k1 v1 k2 v2 …, atomically: either every pair applies or none does.
    ///
    /// Errors follow redis-server 7.0's `configSetCommand`: names are checked first, in order,
    /// and the first unknown, immutable or repeated one is reported (under the spelling the
    /// client used); then values are parsed in order and the first bad one is reported (under
    /// the table's lower-case spelling of the name used: the canonical one or the alias). The caller handles arity (an odd argument count is
    /// `ERR syntax error` in Redis).
    pub fn set_many(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), ConfigError> {
        // (directive, the table spelling the client named it by): redis-server 7.0 keeps an
        // alias as a config of its own, so a bad value is reported under the alias, and
        // `min-replicas-to-write 1 min-slaves-to-write 2` is no duplicate (the later one wins).
        let mut chosen: Vec<(&'static Directive, &'static str)> = Vec::with_capacity(pairs.len());
        for (name, _) in pairs {
            let shown = String::from_utf8_lossy(name);
            let Some((directive, spelled)) = lookup(name) else {
                return Err(ConfigError(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{shown}'"
                )));
            };
            // redis-server 7 refuses these while `enable-protected-configs` is off (its default).
            if matches!(directive.name, "dir" | "dbfilename") {
                return Err(ConfigError::failed(&shown, "can't set protected config"));
            }
            if !directive.mutable {
                return Err(ConfigError::failed(&shown, "can't set immutable config"));
            }
            if chosen.iter().any(|(seen, name)| std::ptr::eq(*seen, directive) && *name == spelled) {
                return Err(ConfigError::failed(&shown, "duplicate parameter"));
            }
            chosen.push((directive, spelled));
        }
        // Apply to a copy and swap it in only if everything parsed: CONFIG SET is rare, and a
        // copy makes "all or nothing" trivially true.
        let mut next = self.clone();
        for ((directive, spelled), (_, value)) in chosen.iter().zip(pairs) {
            directive.apply_value(&mut next, value).map_err(|reason| ConfigError::failed(spelled, &reason))?;
        }
        *self = next;
        Ok(())
    }

    /// Checks what no single directive can: the two listeners must not collide, and at least
    /// one must be enabled.
    pub fn validate(&self) -> Result<(), String> {
        if self.port == 0 && self.memcache_port == 0 {
            return Err("port and memcache-port are both 0: nothing to listen on".to_owned());
        }
        if self.port == self.memcache_port {
            return Err(format!(
                "port and memcache-port are both {}: the RESP and memcached listeners need \
                 different ports",
                self.port
            ));
        }
        if self.memcache_sasl && self.memcache_protocol == MemcacheProtocol::Ascii {
            // memcached -S -B ascii refuses to start the same way.
            return Err("memcache-sasl yes needs the binary protocol: memcache-protocol ascii cannot \
                        authenticate"
                .to_owned());
        }
        Ok(())
    }

    /// The `bind` entries, split into host and optional flag, with Redis's wildcards `*` and `::*`
    /// mapped to the unspecified addresses.
    pub fn bind_addrs(&self) -> impl Iterator<Item = BindAddr<'_>> {
        self.bind.iter().map(|entry| {
            let (host, optional) = match entry.strip_prefix('-') {
                Some(host) => (host, true),
                None => (entry.as_str(), false),
            };
            let host = match host {
                "*" => "0.0.0.0",
                "::*" => "::",
                other => other,
            };
            BindAddr { host, optional }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    const CONF: &str = include_str!("../../conf/cachette.conf");

    fn parsed(text: &str) -> Result<Config, String> {
        let mut config = Config::default();
        parse_file_text(text, &mut config).map(|()| config)
    }

    fn err(text: &str) -> String {
        parsed(text).expect_err("should fail")
    }

    fn run(args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("cachette").chain(args.iter().copied()).map(OsString::from);
        match parse_args(argv)? {
            Invocation::Run(config) => Ok(*config),
            Invocation::Print(text) => Err(format!("printed: {text}")),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.bind, vec!["127.0.0.1".to_owned()]);
        assert_eq!((c.port, c.memcache_port), (6379, 11211));
        assert!(c.threads >= 1);
        assert_eq!(c.threads, std::thread::available_parallelism().map_or(1, |n| n.get()).min(1024));
        assert_eq!((c.timeout, c.tcp_backlog, c.tcp_keepalive), (0, 511, 300));
        assert_eq!((c.databases, c.maxclients), (16, 10000));
        assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
        assert_eq!(c.client_query_buffer_limit, 1024 * 1024 * 1024);
        assert_eq!(c.item_size_max, 1024 * 1024);
        assert_eq!((c.hz, c.active_expire_effort), (10, 1));
        assert_eq!(c.loglevel, LogLevel::Notice);
        assert_eq!(c.logfile, "");
        assert_eq!(c.config_file, None);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn every_default_applies_cleanly() {
        let mut c = Config::default();
        for d in DIRECTIVES {
            assert_eq!(d.apply_default(&mut c), Ok(()), "{}", d.name);
        }
    }

    /// Setting each integer/memory directive to its bounds and reading it back catches a row
    /// whose bounds do not fit its field (the setters would otherwise drop the value).
    #[test]
    fn bounds_round_trip_through_fields() {
        for d in DIRECTIVES {
            let (lo, hi) = match d.kind {
                Kind::Int { min, max, clamp: None, .. } => (min.to_string(), max.to_string()),
                Kind::Int { clamp: Some((lo, hi)), .. } => (lo.to_string(), hi.to_string()),
                Kind::Memory { min, max } => (min.to_string(), max.to_string()),
                _ => continue,
            };
            for v in [lo, hi] {
                let mut c = Config::default();
                d.apply_args(&mut c, &[v.clone().into_bytes()]).expect("in range");
                assert_eq!(d.value(&c), v, "{}", d.name);
            }
        }
    }

    #[test]
    fn save_lines_add_up_as_in_redis_conf() {
        let parse = |text: &str| {
            let mut c = Config::default();
            parse_file_text(text, &mut c).map(|()| c.save)
        };
        assert_eq!(parse(""), Ok(vec![(3600, 1), (300, 100), (60, 10000)]));
        assert_eq!(parse("save 900 1\nsave 300 10\nsave 60 10000\n"), Ok(vec![(900, 1), (300, 10), (60, 10000)]));
        assert_eq!(parse("save 900 1 300 10\n"), Ok(vec![(900, 1), (300, 10)]));
        assert_eq!(parse("save 900 1\nsave \"\"\n"), Ok(vec![]));
        assert_eq!(parse("save \"\"\nsave 60 5\n"), Ok(vec![(60, 5)]));
        assert!(parse("save 900\n").is_err());
        let mut c = Config::default();
        c.set(b"save", b"10 1").expect("CONFIG SET");
        c.set(b"save", b"20 2").expect("CONFIG SET");
        assert_eq!(c.save, vec![(20, 2)], "CONFIG SET replaces");
        assert_eq!(DIRECTIVES.iter().find(|d| d.name == "save").map(|d| d.value(&c)), Some("20 2".to_owned()));
    }

    #[test]
    fn conf_file_matches_the_table_defaults() {
        // Start far from the defaults so that every directive must be set by the file.
        let mut c = Config {
            bind: vec!["10.1.2.3".into()],
            port: 1,
            memcache_port: 2,
            threads: Config::default().threads, // dynamic default: commented out in the file
            timeout: 3,
            tcp_backlog: 4,
            tcp_keepalive: 5,
            databases: 6,
            maxclients: 7,
            proto_max_bulk_len: 8,
            client_query_buffer_limit: 9,
            item_size_max: 10,
            memcache_sasl: true,
            memcache_sasl_pwdb: "x".into(),
            memcache_cas: false,
            memcache_enable_shutdown: true,
            memcache_protocol: MemcacheProtocol::Binary,
            hz: 11,
            active_expire_effort: 2,
            busy_poll_us: 12,
            metrics_port: 18,
            metrics_bind: "10.9.9.9".into(),
            metrics_names: 2,
            maxmemory: 13,
            maxmemory_policy: crate::engine::evict::Policy::AllkeysLfu,
            maxmemory_samples: 14,
            maxmemory_eviction_tenacity: 15,
            lfu_log_factor: 16,
            lfu_decay_time: 17,
            // Empty, not some other points: later `save` lines add to earlier ones.
            save: Vec::new(),
            dir: "/".into(),
            dbfilename: "x.rdb".into(),
            rdbcompression: false,
            rdbchecksum: false,
            stop_writes_on_bgsave_error: false,
            rdb_save_incremental_fsync: false,
            rdb_key_save_delay: 7,
            bgsave_cpulist: "x".into(),
            aof_rewrite_cpulist: "x".into(),
            slowlog_log_slower_than: 13,
            slowlog_max_len: 14,
            latency_monitor_threshold: 15,
            latency_tracking: false,
            enable_debug_command: 1,
            loglevel: LogLevel::Debug,
            logfile: "x".into(),
            appendonly: true,
            appendfilename: "a".into(),
            appenddirname: "b".into(),
            appendfsync: crate::persist::aof::Fsync::Always,
            aof_load_truncated: false,
            aof_use_rdb_preamble: false,
            auto_aof_rewrite_percentage: 19,
            auto_aof_rewrite_min_size: 20,
            protected_mode: false,
            requirepass: "x".into(),
            aclfile: "x".into(),
            acllog_max_len: 19,
            users: Vec::new(),
            notify_keyspace_events: 1,
            client_output_buffer_limit: [ObufLimit { hard: 1, soft: 2, soft_secs: 3 }; 3],
            replicaof: "h 1".into(),
            masterauth: "x".into(),
            masteruser: "x".into(),
            replica_read_only: false,
            replica_serve_stale_data: false,
            replica_ignore_maxmemory: false,
            repl_backlog_size: 21,
            repl_backlog_ttl: 22,
            repl_diskless_sync: false,
            repl_diskless_sync_delay: 23,
            repl_diskless_sync_max_replicas: 24,
            repl_ping_replica_period: 25,
            repl_timeout: 26,
            replica_priority: 7,
            replica_announce_ip: "x".to_owned(),
            replica_announce_port: 9,
            replica_announced: false,
            min_replicas_to_write: 3,
            min_replicas_max_lag: 4,
            config_file: None,
        };
        parse_file_text(CONF, &mut c).expect("conf/cachette.conf parses");
        assert_eq!(c, Config::default());
    }

    /// Each directive appears in conf/cachette.conf as a live line (or, for a default that
    /// depends on the machine, as a commented example), and the comment block above it states
    /// correctly whether CONFIG SET can change it.
    #[test]
    fn conf_file_documents_every_directive() {
        let lines: Vec<&str> = CONF.lines().collect();
        for d in DIRECTIVES {
            let live = format!("{} ", d.name);
            let example = format!("# {} ", d.name);
            let at = lines
                .iter()
                .position(|l| match d.default {
                    DefaultValue::OnlineCpus => l.starts_with(&example),
                    DefaultValue::Literal(_) => l.starts_with(&live),
                })
                .unwrap_or_else(|| panic!("{} is not in conf/cachette.conf", d.name));
            let block: Vec<&str> = lines[..at].iter().rev().take_while(|l| l.starts_with('#')).copied().collect();
            let want = if d.mutable { "CONFIG SET: yes" } else { "CONFIG SET: no" };
            assert!(
                block.iter().any(|l| l.contains(want)),
                "the comment above {} in conf/cachette.conf should say '{want}'",
                d.name
            );
        }
    }

    #[test]
    fn file_syntax() {
        let c = parsed(
            "# a comment\n\n   \t\n  # indented comment\r\nPORT 7000\r\n\
             bind \"127.0.0.1\" '-::1'\nlogfile \"/tmp/with space.log\"\nLogLevel WARNING\n\
             timeout '5'\nhz \"\\x32\\x30\"\nport 7001\n",
        )
        .expect("parses");
        assert_eq!(c.port, 7001, "later lines override earlier ones");
        assert_eq!(c.bind, vec!["127.0.0.1", "-::1"]);
        assert_eq!(c.logfile, "/tmp/with space.log");
        assert_eq!(c.loglevel, LogLevel::Warning);
        assert_eq!((c.timeout, c.hz), (5, 20));
    }

    #[test]
    fn file_errors_name_the_line() {
        // Reasons as redis-server 7.0.15 words them for the same lines.
        assert_eq!(err("port 7000\n\nfoo bar\n"), "line 3: 'foo bar': Bad directive or wrong number of arguments");
        assert_eq!(err("timeout abc"), "line 1: 'timeout abc': argument couldn't be parsed into an integer");
        assert_eq!(err("timeout \"5"), "line 1: 'timeout \"5': Unbalanced quotes in configuration line");
        assert_eq!(err("timeout \"5\"x"), "line 1: 'timeout \"5\"x': Unbalanced quotes in configuration line");
        assert_eq!(err("timeout 5 # c"), "line 1: 'timeout 5 # c': wrong number of arguments");
        assert_eq!(err("timeout"), "line 1: 'timeout': wrong number of arguments");
        assert_eq!(err("logfile a b"), "line 1: 'logfile a b': wrong number of arguments");
        assert_eq!(
            err("loglevel loud"),
            "line 1: 'loglevel loud': argument(s) must be one of the following: debug, \
             verbose, notice, warning, nothing"
        );
        assert_eq!(err("  hz 1000 2  "), "line 1: 'hz 1000 2': wrong number of arguments");
        assert_eq!(
            err("bind a b c d e f g h i j k l m n o p q"),
            "line 1: 'bind a b c d e f g h i j k l m n o p q': Too many bind addresses specified."
        );
        assert_eq!(err("daemonize maybe"), "line 1: 'daemonize maybe': argument must be 'yes' or 'no'");
        assert_eq!(
            err("supervised foo"),
            "line 1: 'supervised foo': argument(s) must be one of the following: upstart, \
             systemd, auto, no"
        );
        assert_eq!(
            err("databases 32"),
            "line 1: 'databases 32': argument must be between 1 and 16 inclusive (cachette \
             supports at most 16 databases for now)"
        );
        assert_eq!(err("proto-max-bulk-len 1kk"), "line 1: 'proto-max-bulk-len 1kk': argument must be a memory value");
        let long = format!("foo {}", "x".repeat(300));
        assert!(err(&long).len() < 200);
    }

    #[test]
    fn unsupported_directives_stop_start_up() {
        for line in [
            "cluster-enabled no",
            "activerehashing no",
            "lua-time-limit 5000",
            "acl-pubsub-default resetchannels",
            "rename-command FLUSHALL \"\"",
        ] {
            let name = line.split(' ').next().unwrap_or_default();
            assert_eq!(
                err(line),
                format!(
                    "line 1: '{line}': '{name}' is a redis-server directive that cachette does \
                     not support yet"
                )
            );
        }
        assert_eq!(
            err("daemonize yes"),
            "line 1: 'daemonize yes': 'daemonize yes' is not supported by cachette yet (only \
             'daemonize no' is)"
        );
        assert_eq!(
            err("supervised systemd"),
            "line 1: 'supervised systemd': 'supervised systemd' is not supported by cachette \
             yet (only 'supervised no' is)"
        );
        assert!(parsed("daemonize NO\nsupervised no\n").is_ok());
    }

    #[test]
    fn include() {
        let dir = scratch_dir("include");
        let inner = dir.join("inner.conf");
        std::fs::write(&inner, "timeout 42\n").expect("write");
        let c = parsed(&format!("port 7000\ninclude {}\n", inner.display())).expect("parses");
        assert_eq!((c.port, c.timeout), (7000, 42));

        std::fs::write(&inner, "\nbogus 1\n").expect("write");
        let e = err(&format!("include {}", inner.display()));
        assert!(e.starts_with("line 1: 'include "), "{e}");
        assert!(e.ends_with("inner.conf: line 2: 'bogus 1': Bad directive or wrong number of arguments"), "{e}");

        std::fs::write(&inner, format!("include {}\n", inner.display())).expect("write");
        assert!(err(&format!("include {}", inner.display())).contains("nested too deeply"));
        assert!(err("include /nonexistent/cachette.conf").contains("can't open config file"));
    }

    #[test]
    fn config_get_formats_like_redis() {
        let c = Config::default();
        let one = |p: &str| c.get(p.as_bytes());
        assert_eq!(one("port"), vec![("port", "6379".to_owned())]);
        assert_eq!(one("PORT"), vec![("port", "6379".to_owned())]);
        assert_eq!(one("proto-max-bulk-len"), vec![("proto-max-bulk-len", "536870912".into())]);
        assert_eq!(one("client-query-buffer-limit"), vec![("client-query-buffer-limit", "1073741824".into())]);
        assert_eq!(one("loglevel"), vec![("loglevel", "notice".into())]);
        assert_eq!(one("logfile"), vec![("logfile", String::new())]);
        assert_eq!(one("daemonize"), vec![("daemonize", "no".into())]);
        assert_eq!(one("supervised"), vec![("supervised", "no".into())]);
        assert_eq!(one("nonexistent"), vec![]);
        // No glob characters: an exact lookup, so the backslash is not an escape.
        assert_eq!(one("p\\ort"), vec![]);
        assert_eq!(one("tcp-*"), vec![("tcp-backlog", "511".to_owned()), ("tcp-keepalive", "300".to_owned())]);
        assert_eq!(one("P?RT"), vec![("port", "6379".to_owned())]);
        assert_eq!(
            one("*port"),
            vec![
                ("port", "6379".into()),
                ("memcache-port", "11211".into()),
                ("metrics-port", "9279".into()),
                ("replica-announce-port", "0".into()),
                ("slave-announce-port", "0".into())
            ]
        );
        // Aliases are listed under their own names too, as redis-server lists slave-priority.
        // Hidden directives answer only to their exact name, as redis-server's HIDDEN_CONFIG.
        let hidden = DIRECTIVES.iter().filter(|d| table::HIDDEN.contains(&d.name));
        let listed = DIRECTIVES.iter().map(|d| 1 + d.aliases.len()).sum::<usize>() - hidden.count();
        assert_eq!(one("*").len(), listed);
        assert!(one("rdb*").iter().all(|(n, _)| *n != "rdb-key-save-delay"));
        assert_eq!(one("rdb-key-save-delay"), vec![("rdb-key-save-delay", "0".into())]);
        assert_eq!(one("slave-priority"), vec![("slave-priority", "100".into())]);

        let mut c = Config::default();
        parse_file_text("bind 127.0.0.1 -::1", &mut c).expect("parses");
        assert_eq!(c.get(b"bind"), vec![("bind", "127.0.0.1 -::1".to_owned())]);
    }

    #[test]
    fn config_get_many_dedupes_and_echoes_exact_names() {
        let c = Config::default();
        assert_eq!(c.get_many(&[b"port", b"PORT"]), vec![("port".into(), "6379".into())]);
        assert_eq!(c.get_many(&[b"PORT"]), vec![("PORT".into(), "6379".into())]);
        let got = c.get_many(&[b"*port", b"port", b"hz"]);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["port", "memcache-port", "metrics-port", "replica-announce-port", "slave-announce-port", "hz"]
        );
    }

    fn set_err(c: &mut Config, pairs: &[(&str, &str)]) -> String {
        let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        c.set_many(&pairs).expect_err("should fail").message().to_owned()
    }

    /// Every expected reply below is what redis-server 7.0.15 answered to the same CONFIG SET
    /// (recorded from a throwaway instance): `(pairs, argument named, reason)`, where the reason
    /// `UNKNOWN` stands for the "Unknown option" reply.
    #[test]
    fn config_set_errors_match_redis() {
        const UNKNOWN: &str = "";
        const IMMUTABLE: &str = "can't set immutable config";
        const DUPLICATE: &str = "duplicate parameter";
        const NOT_INT: &str = "argument couldn't be parsed into an integer";
        const NOT_MEMORY: &str = "argument must be a memory value";
        const INT_RANGE: &str = "argument must be between 0 and 2147483647 inclusive";
        const BUF_RANGE: &str = "argument must be between 1048576 and 9223372036854775807 inclusive";
        let want = |arg: &str, reason: &str| {
            if reason == UNKNOWN {
                format!("ERR Unknown option or number of arguments for CONFIG SET - '{arg}'")
            } else {
                format!("ERR CONFIG SET failed (possibly related to argument '{arg}') - {reason}")
            }
        };
        assert_eq!(
            want("timeout", NOT_INT),
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't \
             be parsed into an integer"
        );
        type Case = (&'static [(&'static str, &'static str)], &'static str, &'static str);
        let cases: &[Case] = &[
            (&[("databases", "3")], "databases", IMMUTABLE),
            (&[("DATABASES", "3")], "DATABASES", IMMUTABLE),
            (&[("tcp-backlog", "5")], "tcp-backlog", IMMUTABLE),
            (&[("logfile", "/tmp/x")], "logfile", IMMUTABLE),
            (&[("daemonize", "no")], "daemonize", IMMUTABLE),
            (&[("foo", "1")], "foo", UNKNOWN),
            (&[("timeout", "abc")], "timeout", NOT_INT),
            // A bad value is reported under the canonical name, not the client's spelling...
            (&[("TIMEOUT", "abc")], "timeout", NOT_INT),
            // ... or under the alias's, as redis-server keeps aliases as configs of their own.
            (&[("SLAVE-PRIORITY", "abc")], "slave-priority", NOT_INT),
            (&[("slave-priority", "1"), ("SLAVE-PRIORITY", "2")], "SLAVE-PRIORITY", DUPLICATE),
            (&[("timeout", "-1")], "timeout", INT_RANGE),
            (&[("timeout", "010")], "timeout", NOT_INT),
            (&[("timeout", "+1")], "timeout", NOT_INT),
            (&[("timeout", "99999999999")], "timeout", INT_RANGE),
            (&[("hz", "-1")], "hz", INT_RANGE),
            (&[("active-expire-effort", "11")], "active-expire-effort", "argument must be between 1 and 10 inclusive"),
            (&[("tcp-keepalive", "-1")], "tcp-keepalive", INT_RANGE),
            (&[("maxclients", "0")], "maxclients", "argument must be between 1 and 4294967295 inclusive"),
            (&[("proto-max-bulk-len", "100")], "proto-max-bulk-len", BUF_RANGE),
            (&[("proto-max-bulk-len", "abc")], "proto-max-bulk-len", NOT_MEMORY),
            (&[("proto-max-bulk-len", "")], "proto-max-bulk-len", BUF_RANGE),
            (&[("proto-max-bulk-len", "1kk")], "proto-max-bulk-len", NOT_MEMORY),
            (&[("proto-max-bulk-len", "-5")], "proto-max-bulk-len", NOT_MEMORY),
            (&[("proto-max-bulk-len", "99999999999999999999")], "proto-max-bulk-len", BUF_RANGE),
            (&[("client-query-buffer-limit", "10")], "client-query-buffer-limit", BUF_RANGE),
            // Redis 7.0 lists four words; 7.2 added `nothing`, which cachette accepts.
            (
                &[("loglevel", "foo")],
                "loglevel",
                "argument(s) must be one of the following: debug, verbose, notice, warning, \
                 nothing",
            ),
            (&[("timeout", "5"), ("timeout", "6")], "timeout", DUPLICATE),
            (&[("timeout", "5"), ("TIMEOUT", "6")], "TIMEOUT", DUPLICATE),
            // Names are all checked before any value, and the first bad name wins.
            (&[("timeout", "5"), ("hz", "abc")], "hz", NOT_INT),
            (&[("foo", "1"), ("databases", "3")], "foo", UNKNOWN),
            (&[("databases", "3"), ("foo", "1")], "databases", IMMUTABLE),
            (&[("hz", "abc"), ("foo", "1")], "foo", UNKNOWN),
            (&[("timeout", "7"), ("databases", "5")], "databases", IMMUTABLE),
            // Mutable in redis-server 7, immutable in cachette (no runtime re-binding).
            (&[("port", "1")], "port", IMMUTABLE),
            (&[("bind", "0.0.0.0")], "bind", IMMUTABLE),
        ];
        let mut c = Config::default();
        let before = c.clone();
        for (pairs, arg, reason) in cases {
            assert_eq!(set_err(&mut c, pairs), want(arg, reason), "{pairs:?}");
            assert_eq!(c, before, "a failed CONFIG SET {pairs:?} must change nothing");
        }
    }

    #[test]
    fn config_set_applies_and_is_atomic() {
        let mut c = Config::default();
        c.set(b"timeout", b"30").expect("ok");
        c.set(b"LOGLEVEL", b"WARNING").expect("ok");
        c.set(b"proto-max-bulk-len", b"2MB").expect("ok");
        c.set(b"memcache-item-size-max", b"2000000b").expect("ok");
        assert_eq!(c.timeout, 30);
        assert_eq!(c.loglevel, LogLevel::Warning);
        assert_eq!(c.get(b"loglevel"), vec![("loglevel", "warning".to_owned())]);
        assert_eq!(c.proto_max_bulk_len, 2 * 1024 * 1024);
        assert_eq!(c.get(b"memcache-item-size-max")[0].1, "2000000");
        // hz is clamped into 1..=500 rather than refused, as in Redis.
        c.set(b"hz", b"1000").expect("ok");
        assert_eq!(c.get(b"hz")[0].1, "500");
        c.set(b"hz", b"0").expect("ok");
        assert_eq!(c.hz, 1);

        c.set_many(&[(b"timeout", b"1"), (b"maxclients", b"5")]).expect("ok");
        assert_eq!((c.timeout, c.maxclients), (1, 5));
        let before = c.clone();
        // The second value is bad: the first must not stick.
        assert!(c.set_many(&[(b"timeout", b"2"), (b"maxclients", b"0")]).is_err());
        assert_eq!(c, before);
        assert_eq!(c.set_many(&[]), Ok(()));
    }

    #[test]
    fn every_mutable_directive_round_trips_through_set_and_get() {
        for d in DIRECTIVES.iter().filter(|d| d.mutable) {
            let mut c = Config::default();
            let current = d.value(&c);
            c.set(d.name.as_bytes(), current.as_bytes()).expect("own value accepted");
            assert_eq!(c, Config::default(), "{}", d.name);
        }
    }

    /// A per-test temporary directory, removed when the test ends.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch_dir(tag: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("cachette-config-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        ScratchDir(dir)
    }

    #[test]
    fn command_line_overrides_the_file() {
        let dir = scratch_dir("cli");
        let file = dir.join("c.conf");
        std::fs::write(&file, "port 7000\ntimeout 10\nbind 10.0.0.1\n").expect("write");
        let path = file.to_str().expect("utf-8 temp path");

        let c = run(&[path]).expect("runs");
        assert_eq!((c.port, c.timeout), (7000, 10));
        assert_eq!(c.config_file.as_deref(), Some(file.as_path()));

        let c = run(&[path, "--timeout", "20", "--bind", "127.0.0.1", "-::1", "--hz", "50"]).expect("runs");
        assert_eq!((c.port, c.timeout, c.hz), (7000, 20, 50));
        assert_eq!(c.bind, vec!["127.0.0.1", "-::1"]);

        // Later command-line directives win over earlier ones too.
        let c = run(&["--port", "1", "--PORT", "2"]).expect("runs");
        assert_eq!(c.port, 2);
        assert_eq!(c.config_file, None);
    }

    #[test]
    fn command_line_forms() {
        let c = run(&["--port=7001", "--memcache-port 7002", "--loglevel", "verbose"]).expect("runs");
        assert_eq!((c.port, c.memcache_port, c.loglevel), (7001, 7002, LogLevel::Verbose));
        // The token after a bare --name is its argument even when it starts with '-'.
        let c = run(&["--bind", "-::1", "127.0.0.1", "--timeout", "3"]).expect("runs");
        assert_eq!(c.bind, vec!["-::1", "127.0.0.1"]);
        assert_eq!(c.timeout, 3);
        // One quoted word holding several addresses, as redis-server allows.
        let c = run(&["--bind", "127.0.0.1 -::1"]).expect("runs");
        assert_eq!(c.bind, vec!["127.0.0.1", "-::1"]);
        // memcached's short flags.
        let c = run(&["-t", "3", "-c", "50", "-I", "2m", "-l", "127.0.0.1,::1"]).expect("runs");
        assert_eq!((c.threads, c.maxclients, c.item_size_max), (3, 50, 2 * 1024 * 1024));
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        let c = run(&["-I", "2000000"]).expect("runs");
        assert_eq!(c.item_size_max, 2_000_000);
        let c = run(&["--memcache-item-size-max", "2m"]).expect("runs");
        assert_eq!(c.item_size_max, 2_000_000, "Redis units outside -I");
        // -S is memcache-sasl yes; without a users file SASL checks the ACL users.
        assert!(run(&["-S"]).expect("no pwdb: the ACL users").memcache_sasl);
        let c = run(&["-S", "--memcache-sasl-pwdb", "/etc/cachette/users"]).expect("runs");
        assert!(c.memcache_sasl);
        assert_eq!(c.memcache_sasl_pwdb, "/etc/cachette/users");
        let err = run(&["-S", "--memcache-sasl-pwdb", "/x", "-B", "ascii"]).expect_err("ascii + SASL");
        assert!(err.contains("memcache-protocol ascii"), "{err}");
    }

    #[test]
    fn memcached_flags() {
        let c = run(&["-p", "11311", "-U", "0", "-m", "128", "-M", "-C", "-A", "-B", "ascii", "-b", "64", "-vv"])
            .expect("runs");
        assert_eq!(c.memcache_port, 11311);
        assert_eq!(c.maxmemory, 128 * 1024 * 1024);
        assert_eq!(c.maxmemory_policy, crate::engine::evict::Policy::NoEviction);
        assert!(!c.memcache_cas && c.memcache_enable_shutdown);
        assert_eq!(c.memcache_protocol, MemcacheProtocol::Ascii);
        assert_eq!((c.tcp_backlog, c.loglevel), (64, LogLevel::Debug));
        assert_eq!(run(&["-v"]).expect("runs").loglevel, LogLevel::Verbose);
        let c = run(&["-o", "modern,idle_timeout=5,hashpower=20,no_lru_crawler"]).expect("runs");
        assert_eq!(c.timeout, 5);
        let d = Config::default();
        assert!(d.memcache_cas && !d.memcache_enable_shutdown);
        assert_eq!(
            (d.maxmemory, d.maxmemory_policy, d.memcache_protocol),
            (0, crate::engine::evict::Policy::NoEviction, MemcacheProtocol::Auto)
        );
        // The flags override what --memcached-compat starts from, wherever it stands.
        let c = run(&["-t", "2", "--memcached-compat"]).expect("runs");
        assert_eq!((c.port, c.memcache_port, c.threads), (0, 11211, 2));
        assert_eq!((c.maxclients, c.tcp_backlog, c.bind.clone()), (1024, 1024, vec!["127.0.0.1".to_owned()]));
        assert_eq!(run(&["--memcached-compat"]).expect("runs").threads, 4);
        assert_eq!((c.maxmemory, c.maxmemory_policy), (64 * 1024 * 1024, crate::engine::evict::Policy::AllkeysLru));
        let c = run(&["--memcached-compat", "-m", "1024", "-M", "-p", "22122", "--port", "6390"]).expect("runs");
        assert_eq!((c.port, c.memcache_port, c.maxmemory), (6390, 22122, 1024 * 1024 * 1024));
        assert_eq!(c.maxmemory_policy, crate::engine::evict::Policy::NoEviction);
        // -l with ports, as memcached takes it.
        let c = run(&["-l", "127.0.0.1:11311,[::1]:11311"]).expect("runs");
        assert_eq!((c.bind.clone(), c.memcache_port), (vec!["127.0.0.1".to_owned(), "::1".to_owned()], 11311));
        let c = run(&["-l", "::1"]).expect("runs");
        assert_eq!((c.bind.clone(), c.memcache_port), (vec!["::1".to_owned()], 11211));
        assert!(run(&["-l", "127.0.0.1:1,127.0.0.2:2"]).expect_err("bad").contains("one memcached port"));
        // ... and so does the config file.
        let dir = scratch_dir("compat");
        let file = dir.join("c.conf");
        std::fs::write(&file, "maxmemory 1mb\n").expect("write");
        let c = run(&[file.to_str().expect("utf-8"), "--memcached-compat"]).expect("runs");
        assert_eq!((c.port, c.maxmemory), (0, 1024 * 1024));
    }

    #[test]
    fn memcached_flag_errors() {
        assert!(run(&["-U", "11211"]).expect_err("bad").contains("UDP"));
        assert!(run(&["-m", "64mb"]).expect_err("bad").contains("megabytes"));
        assert!(run(&["-m"]).expect_err("bad").contains("-m needs a value"));
        assert!(run(&["-d"]).expect_err("bad").contains("-d has no counterpart"));
        assert!(run(&["-u", "memcache"]).expect_err("bad").contains("-u has no counterpart"));
        assert!(run(&["-o", "ext_path=/x:1G"]).expect_err("bad").contains("ext_path"));
        assert!(run(&["-B", "udp"]).expect_err("bad").contains("ascii, binary, auto"));
        assert!(run(&["-c", "0"]).expect_err("bad").contains("between 1 and"));
    }

    #[test]
    fn command_line_errors() {
        assert_eq!(
            run(&["--timeout", "abc"]).expect_err("bad"),
            "--timeout abc: argument couldn't be parsed into an integer"
        );
        assert_eq!(run(&["--port"]).expect_err("bad"), "--port: wrong number of arguments");
        assert_eq!(run(&["--nope", "1"]).expect_err("bad"), "--nope 1: Bad directive or wrong number of arguments");
        assert_eq!(
            run(&["--activerehashing", "no"]).expect_err("bad"),
            "--activerehashing no: 'activerehashing' is a redis-server directive that cachette does not support yet"
        );
        assert!(run(&["-t"]).expect_err("bad").contains("-t needs a value"));
        assert!(run(&["-"]).expect_err("bad").contains("standard input"));
        assert!(run(&["/nonexistent.conf"]).expect_err("bad").contains("can't open config file"));
        let e = run(&["--port", "1", "stray", "--hz"]).expect_err("bad");
        assert_eq!(e, "--port 1 stray: wrong number of arguments");
        assert!(run(&["--", "x"]).expect_err("bad").contains("directive name"));
        assert!(run(&["--port", "6379", "--memcache-port", "6379"]).expect_err("bad").contains("both 6379"));
        assert!(run(&["--port", "0", "--memcache-port", "0"]).expect_err("bad").contains("both 0"));

        let dir = scratch_dir("cli-err");
        let file = dir.join("bad.conf");
        std::fs::write(&file, "port 7000\nactiverehashing no\n").expect("write");
        let e = run(&[file.to_str().expect("utf-8")]).expect_err("bad");
        assert_eq!(
            e,
            format!(
                "{}: line 2: 'activerehashing no': 'activerehashing' is a redis-server directive that \
                 cachette does not support yet",
                file.display()
            )
        );
    }

    #[test]
    fn help_and_version() {
        cli::command().debug_assert();
        let argv =
            |a: &[&str]| std::iter::once("cachette").chain(a.iter().copied()).map(OsString::from).collect::<Vec<_>>();
        let Ok(Invocation::Print(help)) = parse_args(argv(&["--help"])) else { panic!("--help should print") };
        for flag in ["--port", "--memcache-port", "--bind", "--threads", "-t", "--timeout"] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
        assert!(help.contains("--<name> <value>"), "{help}");
        assert!(help.contains("[default: 6379]"), "{help}");
        let Ok(Invocation::Print(version)) = parse_args(argv(&["cachette.conf", "-V"])) else {
            panic!("-V should print")
        };
        assert_eq!(version, format!("cachette {}\n", env!("CARGO_PKG_VERSION")));
        // As the argument of a directive, --help is just a value (here, an odd log file name).
        assert!(parse_args(argv(&["--logfile", "--help"])).is_ok());
    }

    #[test]
    fn bind_addrs_split_optional_and_wildcards() {
        let mut c = Config::default();
        parse_file_text("bind * -::* -::1 10.0.0.1", &mut c).expect("parses");
        let got: Vec<BindAddr> = c.bind_addrs().collect();
        assert_eq!(
            got,
            vec![
                BindAddr { host: "0.0.0.0", optional: false },
                BindAddr { host: "::", optional: true },
                BindAddr { host: "::1", optional: true },
                BindAddr { host: "10.0.0.1", optional: false },
            ]
        );
    }
}
