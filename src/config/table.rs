//! The directive table: every configuration directive cachette knows, declared once.
//!
//! Each row gives the name (plus aliases), the value type with its bounds, the default, whether
//! CONFIG SET may change it at runtime, and a one-line doc. Config-file parsing, the generic
//! `--name value` command line, `Config::default()`, CONFIG GET and CONFIG SET are all driven
//! from [`DIRECTIVES`]; adding a directive means adding a `Config` field and one row here (and
//! documenting it in `conf/cachette.conf`, which a test enforces). The only hand-written parser
//! is `bind`'s address list.
//!
//! Values are parsed and range-checked the way redis-server 7 does it (`config.c`), with the
//! same error wording, because CONFIG SET errors reach clients verbatim:
//! integers through `string2ll` (no `+`, no leading zeros, no spaces), memory sizes through
//! `memtoull` (`1k` = 1000, `1kb` = 1024, …), booleans as `yes`/`no`, enums case-insensitively.

use std::net::IpAddr;

use super::splitargs::split_args;
use super::{Config, LogLevel, MemcacheProtocol};
use crate::engine::evict::Policy;

/// One configuration directive. See the module docs for how the table is used.
#[derive(Debug)]
pub struct Directive {
    /// Canonical lower-case name, as written in the config file and shown by CONFIG GET.
    pub name: &'static str,
    /// Other names accepted everywhere the canonical one is (CONFIG GET globs list them too,
    /// as Redis lists `slaveof` next to `replicaof`).
    pub aliases: &'static [&'static str],
    /// The value's type and bounds.
    pub kind: Kind,
    /// The value when neither the config file nor the command line sets it.
    pub default: DefaultValue,
    /// Whether CONFIG SET may change it; the others answer "can't set immutable config".
    pub mutable: bool,
    /// One line for `--help` and tooling; `conf/cachette.conf` carries the long form.
    pub doc: &'static str,
    access: Access,
}

/// The type of a directive's value, with the bounds Redis checks.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `yes` or `no`.
    Bool,
    /// A plain integer (`string2ll` syntax) in `min..=max`. With `clamp`, values inside the
    /// accepted range are then silently pulled into the narrower effective range, as Redis does
    /// for `hz` ("more a hint from the user"). `note` is appended to range errors to say why a
    /// limit is narrower than Redis's.
    Int { min: i64, max: i64, clamp: Option<(i64, i64)>, note: &'static str },
    /// A byte count with optional unit (see [`parse_memory`]) in `min..=max`.
    Memory { min: u64, max: u64 },
    /// One of the listed words, case-insensitive; shown in the listed spelling.
    Enum(&'static [&'static str]),
    /// Any string, including the empty one.
    Str,
    /// `bind`: one to 16 addresses (IP literals, host names, `*`, `::*`; `-` prefix = optional).
    Bind,
    /// `save`: pairs of `<seconds> <changes>`, or the empty string for none.
    Save,
    /// `dir`: an existing directory, stored absolute.
    Dir,
    /// `dbfilename`: a bare file name (no directory part).
    FileName,
    /// `notify-keyspace-events`: class characters (`KEA`, `Kx`, …), shown normalised.
    KeyspaceEvents,
    /// `client-output-buffer-limit`: groups of `<class> <hard> <soft> <soft seconds>`; each
    /// group replaces that class's limits, the others stay.
    OutputLimits,
    /// `replicaof`: `<host> <port>` (two words, or one holding both), or `""` for none.
    HostPort,
}

/// Where a directive's default comes from.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// Parsed exactly as a config-file argument line would be.
    Literal(&'static str),
    /// The number of CPUs the process may run on (`threads`).
    OnlineCpus,
}

/// A parsed value, before it is stored into its `Config` field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Memory(u64),
    /// Index into the `Kind::Enum` word list.
    Enum(usize),
    Str(String),
    List(Vec<String>),
    SavePoints(Vec<(u64, u64)>),
    /// (class index, limit) groups of `client-output-buffer-limit`.
    Limits(Vec<(usize, super::ObufLimit)>),
}

/// How a directive reaches its storage.
#[derive(Debug)]
enum Access {
    Field {
        get: fn(&Config) -> Value,
        set: fn(&mut Config, Value),
    },
    /// Accepted only with this one value, which is what cachette does anyway; there is no field.
    /// This lets stock redis.conf lines such as `daemonize no` through, while `daemonize yes`
    /// still stops start-up instead of being silently ignored.
    Pinned(&'static str),
}

// The setters only ever receive the `Value` variant their `Kind` produces, already checked
// against the row's bounds, so the conversions cannot fail; a row whose bounds exceed its
// field's type is caught by the round-trip test in `mod.rs`, not silently truncated here.
macro_rules! int_field {
    ($field:ident) => {
        Access::Field {
            get: |c| Value::Int(i64::try_from(c.$field).unwrap_or(i64::MAX)),
            set: |c, v| {
                if let Value::Int(n) = v {
                    if let Ok(n) = n.try_into() {
                        c.$field = n;
                    }
                }
            },
        }
    };
}

macro_rules! bool_field {
    ($field:ident) => {
        Access::Field {
            get: |c| Value::Bool(c.$field),
            set: |c, v| {
                if let Value::Bool(b) = v {
                    c.$field = b;
                }
            },
        }
    };
}

macro_rules! str_field {
    ($field:ident) => {
        Access::Field {
            get: |c| Value::Str(c.$field.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.$field = s;
                }
            },
        }
    };
}

macro_rules! memory_field {
    ($field:ident) => {
        Access::Field {
            get: |c| Value::Memory(u64::try_from(c.$field).unwrap_or(u64::MAX)),
            set: |c, v| {
                if let Value::Memory(n) = v {
                    if let Ok(n) = n.try_into() {
                        c.$field = n;
                    }
                }
            },
        }
    };
}

/// Redis's `INT_MAX`, the upper bound of most of its integer directives.
const INT_MAX: i64 = i32::MAX as i64;
/// Redis's `LONG_MAX` on 64-bit platforms, the upper bound of its buffer-size directives.
const LONG_MAX: u64 = i64::MAX as u64;
const MB: u64 = 1024 * 1024;

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max, clamp: None, note: "" }
}

/// Every directive, in the order CONFIG GET lists them and `conf/cachette.conf` documents them.
pub static DIRECTIVES: &[Directive] = &[
    Directive {
        name: "bind",
        aliases: &[],
        kind: Kind::Bind,
        default: DefaultValue::Literal("127.0.0.1"),
        mutable: false,
        doc: "Addresses to listen on (both protocols), space-separated; a leading '-' marks one \
              as optional",
        access: Access::Field {
            get: |c| Value::List(c.bind.clone()),
            set: |c, v| {
                if let Value::List(l) = v {
                    c.bind = l;
                }
            },
        },
    },
    Directive {
        name: "port",
        aliases: &[],
        kind: int(0, 65535),
        default: DefaultValue::Literal("6379"),
        mutable: false,
        doc: "TCP port for Redis (RESP) clients; 0 disables the listener",
        access: int_field!(port),
    },
    Directive {
        name: "memcache-port",
        aliases: &[],
        kind: int(0, 65535),
        default: DefaultValue::Literal("11211"),
        mutable: false,
        doc: "TCP port for memcached clients; 0 disables the listener",
        access: int_field!(memcache_port),
    },
    Directive {
        name: "tcp-backlog",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("511"),
        mutable: false,
        doc: "listen(2) backlog of each listening socket",
        access: int_field!(tcp_backlog),
    },
    Directive {
        name: "timeout",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("0"),
        mutable: true,
        doc: "Close a client after this many idle seconds; 0 never does",
        access: int_field!(timeout),
    },
    Directive {
        name: "tcp-keepalive",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("300"),
        mutable: true,
        doc: "Seconds between TCP keepalive probes on client sockets; 0 turns them off",
        access: int_field!(tcp_keepalive),
    },
    Directive {
        name: "threads",
        aliases: &[],
        kind: int(1, 1024),
        default: DefaultValue::OnlineCpus,
        mutable: false,
        doc: "Worker threads, each running its own event loop",
        access: int_field!(threads),
    },
    Directive {
        name: "maxclients",
        aliases: &[],
        kind: int(1, u32::MAX as i64),
        default: DefaultValue::Literal("10000"),
        mutable: true,
        doc: "Most clients connected at once (both protocols together)",
        access: int_field!(maxclients),
    },
    Directive {
        name: "databases",
        aliases: &[],
        kind: Kind::Int { min: 1, max: 16, clamp: None, note: " (cachette supports at most 16 databases for now)" },
        default: DefaultValue::Literal("16"),
        mutable: false,
        doc: "Number of Redis databases (SELECT 0..N-1); memcached uses database 0",
        access: int_field!(databases),
    },
    Directive {
        name: "proto-max-bulk-len",
        aliases: &[],
        kind: Kind::Memory { min: MB, max: LONG_MAX },
        default: DefaultValue::Literal("512mb"),
        mutable: true,
        doc: "Largest single RESP bulk string a client may send",
        access: memory_field!(proto_max_bulk_len),
    },
    Directive {
        name: "client-query-buffer-limit",
        aliases: &[],
        kind: Kind::Memory { min: MB, max: LONG_MAX },
        default: DefaultValue::Literal("1gb"),
        mutable: true,
        doc: "Most unparsed input buffered for one client before it is disconnected",
        access: memory_field!(client_query_buffer_limit),
    },
    Directive {
        name: "memcache-item-size-max",
        aliases: &[],
        // memcached -I: at least 1k, at most 1 GiB.
        kind: Kind::Memory { min: 1024, max: 1024 * MB },
        default: DefaultValue::Literal("1mb"),
        mutable: true,
        doc: "Largest memcached item value (memcached -I)",
        access: memory_field!(item_size_max),
    },
    Directive {
        name: "memcache-cas",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: false,
        doc: "Give memcached items CAS uniques; 'no' is memcached -C (every CAS reads 0 and \
              every cas/ms C answers EXISTS)",
        access: bool_field!(memcache_cas),
    },
    Directive {
        name: "memcache-enable-shutdown",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("no"),
        mutable: false,
        doc: "Let memcached clients stop the server with 'shutdown' (memcached -A)",
        access: bool_field!(memcache_enable_shutdown),
    },
    Directive {
        name: "memcache-protocol",
        aliases: &[],
        // memcached -B's words.
        kind: Kind::Enum(&MemcacheProtocol::NAMES),
        default: DefaultValue::Literal("auto"),
        mutable: false,
        doc: "Protocols the memcached port speaks: ascii, binary, or auto (by the first byte of \
              each connection; memcached -B)",
        access: Access::Field {
            get: |c| Value::Enum(c.memcache_protocol as usize),
            set: |c, v| {
                if let Value::Enum(i) = v {
                    if let Some(p) = MemcacheProtocol::ALL.get(i) {
                        c.memcache_protocol = *p;
                    }
                }
            },
        },
    },
    Directive {
        name: "memcache-sasl",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("no"),
        mutable: false,
        doc: "Require SASL PLAIN authentication on the memcached port, binary protocol only \
              (memcached -S)",
        access: bool_field!(memcache_sasl),
    },
    Directive {
        name: "memcache-sasl-pwdb",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: false,
        doc: "File of user:password lines for memcache-sasl (memcached's MEMCACHED_SASL_PWDB format)",
        access: Access::Field {
            get: |c| Value::Str(c.memcache_sasl_pwdb.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.memcache_sasl_pwdb = s;
                }
            },
        },
    },
    Directive {
        name: "hz",
        aliases: &[],
        kind: Kind::Int { min: 0, max: INT_MAX, clamp: Some((1, 500)), note: "" },
        default: DefaultValue::Literal("10"),
        mutable: true,
        doc: "Background task frequency (active expiry, timeouts) per second; kept within 1..500",
        access: int_field!(hz),
    },
    Directive {
        name: "active-expire-effort",
        aliases: &[],
        kind: int(1, 10),
        default: DefaultValue::Literal("1"),
        mutable: true,
        doc: "How hard the background expiry cycle works (1..10)",
        access: int_field!(active_expire_effort),
    },
    Directive {
        name: "busy-poll-us",
        aliases: &[],
        kind: int(0, 100_000),
        default: DefaultValue::Literal("1000"),
        mutable: true,
        doc: "Microseconds a worker that just served several clients keeps polling before it sleeps",
        access: int_field!(busy_poll_us),
    },
    Directive {
        name: "metrics-port",
        aliases: &[],
        kind: int(0, 65535),
        default: DefaultValue::Literal("9279"),
        mutable: false,
        doc: "TCP port of the Prometheus /metrics and /health HTTP endpoint; 0 disables it",
        access: int_field!(metrics_port),
    },
    Directive {
        name: "metrics-bind",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("127.0.0.1"),
        mutable: false,
        doc: "Address the metrics endpoint listens on",
        access: Access::Field {
            get: |c| Value::Str(c.metrics_bind.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.metrics_bind = s;
                }
            },
        },
    },
    Directive {
        name: "metrics-names",
        aliases: &[],
        kind: Kind::Enum(&crate::metrics::Families::NAMES),
        default: DefaultValue::Literal("all"),
        mutable: true,
        doc: "Metric names to expose: cachette's own, redis_exporter's, memcached_exporter's, or all",
        access: Access::Field {
            get: |c| Value::Enum(c.metrics_names),
            set: |c, v| {
                if let Value::Enum(i) = v {
                    c.metrics_names = i;
                }
            },
        },
    },
    Directive {
        name: "maxmemory",
        aliases: &[],
        kind: Kind::Memory { min: 0, max: u64::MAX },
        default: DefaultValue::Literal("0"),
        mutable: true,
        doc: "Memory limit in bytes (0 = none); over it, keys are evicted by maxmemory-policy",
        access: memory_field!(maxmemory),
    },
    Directive {
        name: "maxmemory-policy",
        aliases: &[],
        kind: Kind::Enum(&Policy::NAMES),
        default: DefaultValue::Literal("noeviction"),
        mutable: true,
        doc: "What to evict at the memory limit: volatile-/allkeys- lru, lfu, random; volatile-ttl; noeviction",
        access: Access::Field {
            get: |c| Value::Enum(c.maxmemory_policy as usize),
            set: |c, v| {
                if let Value::Enum(i) = v {
                    if let Some(p) = Policy::ALL.get(i) {
                        c.maxmemory_policy = *p;
                    }
                }
            },
        },
    },
    Directive {
        name: "maxmemory-samples",
        aliases: &[],
        kind: int(1, INT_MAX),
        default: DefaultValue::Literal("5"),
        mutable: true,
        doc: "Keys sampled per database when looking for the best key to evict",
        access: int_field!(maxmemory_samples),
    },
    Directive {
        name: "maxmemory-eviction-tenacity",
        aliases: &[],
        kind: int(0, 100),
        default: DefaultValue::Literal("10"),
        mutable: true,
        doc: "How long one eviction round may run (0..100; 100 = until under the limit)",
        access: int_field!(maxmemory_eviction_tenacity),
    },
    Directive {
        name: "lfu-log-factor",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("10"),
        mutable: true,
        doc: "How slowly the LFU counter grows with accesses",
        access: int_field!(lfu_log_factor),
    },
    Directive {
        name: "lfu-decay-time",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("1"),
        mutable: true,
        doc: "Minutes without access per LFU counter decrement (0 = never decays)",
        access: int_field!(lfu_decay_time),
    },
    Directive {
        name: "slowlog-log-slower-than",
        aliases: &[],
        kind: int(-1, i64::MAX),
        default: DefaultValue::Literal("10000"),
        mutable: true,
        doc: "Commands slower than this many microseconds enter the SLOWLOG; 0 logs all, -1 none",
        access: Access::Field {
            get: |c| Value::Int(c.slowlog_log_slower_than),
            set: |c, v| {
                if let Value::Int(n) = v {
                    c.slowlog_log_slower_than = n;
                }
            },
        },
    },
    Directive {
        name: "slowlog-max-len",
        aliases: &[],
        kind: int(0, i64::MAX),
        default: DefaultValue::Literal("128"),
        mutable: true,
        doc: "Entries the SLOWLOG keeps; the oldest go first",
        access: int_field!(slowlog_max_len),
    },
    Directive {
        name: "latency-monitor-threshold",
        aliases: &[],
        kind: int(0, i64::MAX),
        default: DefaultValue::Literal("0"),
        mutable: true,
        doc: "Commands taking at least this many milliseconds are LATENCY samples; 0 turns it off",
        access: int_field!(latency_monitor_threshold),
    },
    Directive {
        name: "latency-tracking",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Keep per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM)",
        access: Access::Field {
            get: |c| Value::Bool(c.latency_tracking),
            set: |c, v| {
                if let Value::Bool(b) = v {
                    c.latency_tracking = b;
                }
            },
        },
    },
    Directive {
        name: "enable-debug-command",
        aliases: &[],
        kind: Kind::Enum(&["no", "yes", "local"]),
        default: DefaultValue::Literal("no"),
        mutable: false,
        doc: "Whether DEBUG is allowed: no, yes, or local (loopback clients only)",
        access: Access::Field {
            get: |c| Value::Enum(c.enable_debug_command as usize),
            set: |c, v| {
                if let Value::Enum(i) = v {
                    c.enable_debug_command = i as u8;
                }
            },
        },
    },
    Directive {
        name: "save",
        aliases: &[],
        kind: Kind::Save,
        // Keep in step with DEFAULT_SAVE_POINTS.
        default: DefaultValue::Literal("3600 1 300 100 60 10000"),
        mutable: true,
        doc: "Snapshot save points: pairs of <seconds> <changes> (a background save runs when at \
              least <changes> writes happened in <seconds>); \"\" turns them off",
        access: Access::Field {
            get: |c| Value::Str(c.save.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(" ")),
            set: |c, v| {
                if let Value::SavePoints(p) = v {
                    c.save = p;
                }
            },
        },
    },
    Directive {
        name: "dir",
        aliases: &[],
        kind: Kind::Dir,
        default: DefaultValue::Literal("."),
        mutable: false,
        doc: "Directory of the RDB snapshot (made absolute at start-up)",
        access: Access::Field {
            get: |c| Value::Str(c.dir.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.dir = s;
                }
            },
        },
    },
    Directive {
        name: "dbfilename",
        aliases: &[],
        kind: Kind::FileName,
        default: DefaultValue::Literal("dump.rdb"),
        mutable: false,
        doc: "File name of the RDB snapshot, inside dir",
        access: Access::Field {
            get: |c| Value::Str(c.dbfilename.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.dbfilename = s;
                }
            },
        },
    },
    Directive {
        name: "rdbcompression",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Compress long strings in snapshots with LZF",
        access: bool_field!(rdbcompression),
    },
    Directive {
        name: "rdbchecksum",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: false,
        doc: "End snapshots with a CRC-64 checksum (and check it when loading)",
        access: bool_field!(rdbchecksum),
    },
    Directive {
        name: "rdb-save-incremental-fsync",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "fsync the snapshot every 4 MB while writing it, so the final fsync does not stall the disk",
        access: bool_field!(rdb_save_incremental_fsync),
    },
    Directive {
        name: "rdb-del-sync-files",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("no"),
        mutable: true,
        doc: "Accepted only as 'no' (cachette's replication syncs leave no snapshot file to delete)",
        access: Access::Pinned("no"),
    },
    Directive {
        name: "rdb-key-save-delay",
        aliases: &[],
        kind: int(0, i32::MAX as i64),
        default: DefaultValue::Literal("0"),
        mutable: true,
        doc: "Microseconds a background save or AOF rewrite sleeps after each key (testing only)",
        access: int_field!(rdb_key_save_delay),
    },
    Directive {
        name: "bgsave_cpulist",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: false,
        doc: "CPUs a background save's child runs on (e.g. 0-3,8-11 or 0-7:2); empty: the server's",
        access: Access::Field {
            get: |c| Value::Str(c.bgsave_cpulist.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.bgsave_cpulist = s;
                }
            },
        },
    },
    Directive {
        name: "aof_rewrite_cpulist",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: false,
        doc: "CPUs an AOF rewrite's child runs on (as bgsave_cpulist); empty: the server's",
        access: Access::Field {
            get: |c| Value::Str(c.aof_rewrite_cpulist.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.aof_rewrite_cpulist = s;
                }
            },
        },
    },
    Directive {
        name: "stop-writes-on-bgsave-error",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Refuse writes (-MISCONF) while the last background save failed and save points are set",
        access: bool_field!(stop_writes_on_bgsave_error),
    },
    Directive {
        name: "loglevel",
        aliases: &[],
        kind: Kind::Enum(&LogLevel::NAMES),
        default: DefaultValue::Literal("notice"),
        mutable: true,
        doc: "Log verbosity: debug, verbose, notice, warning or nothing",
        access: Access::Field {
            get: |c| Value::Enum(c.loglevel as usize),
            set: |c, v| {
                if let Value::Enum(i) = v {
                    if let Some(level) = LogLevel::ALL.get(i) {
                        c.loglevel = *level;
                    }
                }
            },
        },
    },
    Directive {
        name: "logfile",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: false,
        doc: "Log file path; empty logs to standard error",
        access: Access::Field {
            get: |c| Value::Str(c.logfile.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.logfile = s;
                }
            },
        },
    },
    Directive {
        name: "notify-keyspace-events",
        aliases: &[],
        kind: Kind::KeyspaceEvents,
        default: DefaultValue::Literal("\"\""),
        mutable: true,
        doc: "Keyspace event classes published on __keyspace@<db>__ / __keyevent@<db>__ channels",
        access: Access::Field {
            get: |c| Value::Int(i64::from(c.notify_keyspace_events)),
            set: |c, v| {
                if let Value::Int(n) = v {
                    c.notify_keyspace_events = u32::try_from(n).unwrap_or(0);
                }
            },
        },
    },
    Directive {
        name: "client-output-buffer-limit",
        aliases: &[],
        kind: Kind::OutputLimits,
        default: DefaultValue::Literal("normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60"),
        mutable: true,
        doc: "Output buffer limits per client class: <class> <hard> <soft> <soft seconds>",
        access: Access::Field {
            get: |c| Value::Limits(c.client_output_buffer_limit.iter().copied().enumerate().collect()),
            set: |c, v| {
                if let Value::Limits(groups) = v {
                    for (class, limit) in groups {
                        if let Some(slot) = c.client_output_buffer_limit.get_mut(class) {
                            *slot = limit;
                        }
                    }
                }
            },
        },
    },
    Directive {
        name: "protected-mode",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Refuse clients from beyond loopback while the default user has no password",
        access: Access::Field {
            get: |c| Value::Bool(c.protected_mode),
            set: |c, v| {
                if let Value::Bool(b) = v {
                    c.protected_mode = b;
                }
            },
        },
    },
    Directive {
        name: "requirepass",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: true,
        doc: "The default user's password (empty: none, the default user has nopass)",
        access: Access::Field {
            get: |c| Value::Str(c.requirepass.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.requirepass = s;
                }
            },
        },
    },
    Directive {
        name: "aclfile",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: false,
        doc: "File of ACL users (ACL LOAD / ACL SAVE); empty: none",
        access: Access::Field {
            get: |c| Value::Str(c.aclfile.clone()),
            set: |c, v| {
                if let Value::Str(s) = v {
                    c.aclfile = s;
                }
            },
        },
    },
    Directive {
        name: "acllog-max-len",
        aliases: &[],
        kind: Kind::Int { min: 0, max: i64::MAX, clamp: None, note: "" },
        default: DefaultValue::Literal("128"),
        mutable: true,
        doc: "Most entries ACL LOG keeps",
        access: int_field!(acllog_max_len),
    },
    Directive {
        name: "appendonly",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("no"),
        mutable: true,
        doc: "Log every write to the append-only file (AOF) and replay it at start-up",
        access: bool_field!(appendonly),
    },
    Directive {
        name: "appendfilename",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("appendonly.aof"),
        mutable: false,
        doc: "Base name of the AOF files (inside appenddirname)",
        access: str_field!(appendfilename),
    },
    Directive {
        name: "appenddirname",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("appendonlydir"),
        mutable: false,
        doc: "Directory (inside dir) holding the AOF manifest, base and incremental files",
        access: str_field!(appenddirname),
    },
    Directive {
        name: "appendfsync",
        aliases: &[],
        // Redis's word list, in Redis's order, so the error for a bad word matches.
        kind: Kind::Enum(&crate::persist::aof::Fsync::NAMES),
        default: DefaultValue::Literal("everysec"),
        mutable: true,
        doc: "When the AOF is fsynced: always (before the reply), everysec, or no (left to the OS)",
        access: Access::Field {
            get: |c| Value::Enum(c.appendfsync as usize),
            set: |c, v| {
                if let Value::Enum(i) = v {
                    if let Some(p) = crate::persist::aof::Fsync::ALL.get(i) {
                        c.appendfsync = *p;
                    }
                }
            },
        },
    },
    Directive {
        name: "aof-load-truncated",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Load an AOF whose last command is cut short (dropping it) instead of refusing to start",
        access: bool_field!(aof_load_truncated),
    },
    Directive {
        name: "aof-use-rdb-preamble",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Write AOF base files as an RDB image (appendonly.aof.N.base.rdb) instead of RESP commands",
        access: bool_field!(aof_use_rdb_preamble),
    },
    Directive {
        name: "auto-aof-rewrite-percentage",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("100"),
        mutable: true,
        doc: "Rewrite the AOF when it grew by this percentage over its size after the last rewrite (0 = never)",
        access: int_field!(auto_aof_rewrite_percentage),
    },
    Directive {
        name: "auto-aof-rewrite-min-size",
        aliases: &[],
        kind: Kind::Memory { min: 0, max: LONG_MAX },
        default: DefaultValue::Literal("64mb"),
        mutable: true,
        doc: "No automatic AOF rewrite below this size",
        access: memory_field!(auto_aof_rewrite_min_size),
    },
    Directive {
        name: "replicaof",
        aliases: &["slaveof"],
        kind: Kind::HostPort,
        default: DefaultValue::Literal("\"\""),
        mutable: false,
        doc: "Start as a replica of the master at <host> <port> (REPLICAOF changes it at runtime)",
        access: str_field!(replicaof),
    },
    Directive {
        name: "masterauth",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: true,
        doc: "Password a replica sends with AUTH to its master",
        access: str_field!(masterauth),
    },
    Directive {
        name: "masteruser",
        aliases: &[],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: true,
        doc: "ACL user a replica authenticates as with masterauth (empty: the default user)",
        access: str_field!(masteruser),
    },
    Directive {
        name: "replica-read-only",
        aliases: &["slave-read-only"],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "A replica refuses writes from its clients (-READONLY, memcached SERVER_ERROR)",
        access: bool_field!(replica_read_only),
    },
    Directive {
        name: "replica-serve-stale-data",
        aliases: &["slave-serve-stale-data"],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "A replica whose link is down or syncing still answers with the data it has",
        access: bool_field!(replica_serve_stale_data),
    },
    Directive {
        name: "replica-ignore-maxmemory",
        aliases: &["slave-ignore-maxmemory"],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "A replica neither evicts nor refuses writes for maxmemory; its master decides",
        access: bool_field!(replica_ignore_maxmemory),
    },
    Directive {
        name: "repl-backlog-size",
        aliases: &[],
        kind: Kind::Memory { min: 1, max: LONG_MAX },
        default: DefaultValue::Literal("1mb"),
        mutable: true,
        doc: "Replication backlog: how much of the write stream a reconnecting replica can catch up on",
        access: memory_field!(repl_backlog_size),
    },
    Directive {
        name: "repl-backlog-ttl",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("3600"),
        mutable: true,
        doc: "Seconds without replicas after which the backlog is freed (0 = never)",
        access: int_field!(repl_backlog_ttl),
    },
    Directive {
        name: "repl-diskless-sync",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Full resynchronisation streams the snapshot straight to the replica socket instead of a file",
        access: bool_field!(repl_diskless_sync),
    },
    Directive {
        name: "repl-diskless-sync-delay",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("5"),
        mutable: true,
        doc: "Seconds a diskless sync waits for more replicas to arrive before it starts",
        access: int_field!(repl_diskless_sync_delay),
    },
    Directive {
        name: "repl-diskless-sync-max-replicas",
        aliases: &[],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("0"),
        mutable: true,
        doc: "Start a delayed diskless sync at once when this many replicas wait (0 = no limit)",
        access: int_field!(repl_diskless_sync_max_replicas),
    },
    Directive {
        name: "repl-ping-replica-period",
        aliases: &["repl-ping-slave-period"],
        kind: int(1, INT_MAX),
        default: DefaultValue::Literal("10"),
        mutable: true,
        doc: "Seconds between the PINGs a primary sends down the replication stream",
        access: int_field!(repl_ping_replica_period),
    },
    Directive {
        name: "repl-timeout",
        aliases: &[],
        kind: int(1, INT_MAX),
        default: DefaultValue::Literal("60"),
        mutable: true,
        doc: "Seconds of silence after which a replication link is considered dead",
        access: int_field!(repl_timeout),
    },
    Directive {
        name: "repl-diskless-load",
        aliases: &[],
        kind: Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        default: DefaultValue::Literal("disabled"),
        mutable: true,
        doc: "Accepted only as 'disabled': a replica stores the master's RDB in a file, then loads it",
        access: Access::Pinned("disabled"),
    },
    Directive {
        name: "replica-priority",
        aliases: &["slave-priority"],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("100"),
        mutable: true,
        doc: "Failover rank redis-sentinel gives this server as a replica (lower first; 0: never \
              promote it)",
        access: int_field!(replica_priority),
    },
    Directive {
        name: "replica-announce-ip",
        aliases: &["slave-announce-ip"],
        kind: Kind::Str,
        default: DefaultValue::Literal("\"\""),
        mutable: true,
        doc: "Address a replica reports to its primary (and so to sentinel) instead of its \
              connection's; empty: the connection's",
        access: str_field!(replica_announce_ip),
    },
    Directive {
        name: "replica-announce-port",
        aliases: &["slave-announce-port"],
        kind: int(0, 65535),
        default: DefaultValue::Literal("0"),
        mutable: true,
        doc: "Port a replica reports to its primary instead of its own; 0: the port directive",
        access: int_field!(replica_announce_port),
    },
    Directive {
        name: "replica-announced",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("yes"),
        mutable: true,
        doc: "Whether redis-sentinel lists this replica (SENTINEL REPLICAS)",
        access: bool_field!(replica_announced),
    },
    Directive {
        name: "min-replicas-to-write",
        aliases: &["min-slaves-to-write"],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("0"),
        mutable: true,
        doc: "Refuse writes unless at least this many replicas lag at most min-replicas-max-lag \
              seconds (0: off)",
        access: int_field!(min_replicas_to_write),
    },
    Directive {
        name: "min-replicas-max-lag",
        aliases: &["min-slaves-max-lag"],
        kind: int(0, INT_MAX),
        default: DefaultValue::Literal("10"),
        mutable: true,
        doc: "Seconds since its last acknowledgement for a replica to count toward \
              min-replicas-to-write",
        access: int_field!(min_replicas_max_lag),
    },
    Directive {
        name: "daemonize",
        aliases: &[],
        kind: Kind::Bool,
        default: DefaultValue::Literal("no"),
        mutable: false,
        doc: "Accepted only as 'no': cachette stays in the foreground (run it under systemd)",
        access: Access::Pinned("no"),
    },
    Directive {
        name: "supervised",
        aliases: &[],
        // Redis's word list, in Redis's order, so the error for a bad word matches.
        kind: Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        default: DefaultValue::Literal("no"),
        mutable: false,
        doc: "Accepted only as 'no': cachette does not send readiness notifications yet",
        access: Access::Pinned("no"),
    },
];

impl Directive {
    /// The current value, formatted as redis-server's CONFIG GET formats it: memory sizes as
    /// plain byte counts, booleans as yes/no, lists space-joined.
    pub fn value(&self, cfg: &Config) -> String {
        match &self.access {
            Access::Field { get, .. } => self.kind.format(&get(cfg)),
            Access::Pinned(v) => (*v).to_owned(),
        }
    }

    /// The default as a human writes it (`512mb`), for docs and `--help`.
    pub fn default_text(&self) -> &'static str {
        match self.default {
            DefaultValue::Literal("\"\"") => "\"\" (empty)",
            DefaultValue::Literal(s) => s,
            DefaultValue::OnlineCpus => "the number of online CPUs",
        }
    }

    /// Applies the arguments of a config-file line or `--name value…` (without the name).
    pub(crate) fn apply_args(&self, cfg: &mut Config, args: &[Vec<u8>]) -> Result<(), String> {
        let value = match self.kind {
            Kind::Bind => parse_bind(args)?,
            Kind::Save => match parse_save(args)? {
                // As in redis-server's config file (and command line): the first `save` line
                // replaces the default, later ones add their points; `save ""` clears them.
                Value::SavePoints(points) if !points.is_empty() && cfg.save != DEFAULT_SAVE_POINTS => {
                    Value::SavePoints(cfg.save.iter().copied().chain(points).collect())
                }
                v => v,
            },
            // `--client-output-buffer-limit "pubsub 32mb 8mb 60"` arrives as one argument.
            Kind::OutputLimits if args.len() == 1 => {
                let words: Vec<Vec<u8>> =
                    args[0].split(|&b| b == b' ').filter(|w| !w.is_empty()).map(<[u8]>::to_vec).collect();
                parse_output_limits(&words)?
            }
            Kind::OutputLimits => parse_output_limits(args)?,
            Kind::HostPort => parse_host_port(args)?,
            _ if args.len() != 1 => return Err("wrong number of arguments".to_owned()),
            kind => kind.parse(&args[0])?,
        };
        self.store(cfg, value)
    }

    /// Applies one CONFIG SET value. Multi-word values (`bind`) are split on single spaces, as
    /// Redis splits them (`sdssplitlen`), not with the config file's quoting rules.
    pub(crate) fn apply_value(&self, cfg: &mut Config, value: &[u8]) -> Result<(), String> {
        let parsed = match self.kind {
            Kind::Bind => {
                let words: Vec<Vec<u8>> = if value.is_empty() {
                    Vec::new()
                } else {
                    value.split(|&b| b == b' ').map(<[u8]>::to_vec).collect()
                };
                parse_bind(&words)?
            }
            Kind::OutputLimits => {
                let words: Vec<Vec<u8>> =
                    value.split(|&b| b == b' ').filter(|w| !w.is_empty()).map(<[u8]>::to_vec).collect();
                parse_output_limits(&words)?
            }
            kind => kind.parse(value)?,
        };
        self.store(cfg, parsed)
    }

    pub(crate) fn apply_default(&self, cfg: &mut Config) -> Result<(), String> {
        match self.default {
            DefaultValue::Literal(text) => {
                let args = split_args(text.as_bytes()).ok_or("unbalanced quotes in default")?;
                self.apply_args(cfg, &args)
            }
            DefaultValue::OnlineCpus => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                let cpus = match self.kind {
                    Kind::Int { min, max, .. } => i64::try_from(cpus).unwrap_or(i64::MAX).clamp(min, max),
                    _ => 1,
                };
                self.store(cfg, Value::Int(cpus))
            }
        }
    }

    fn store(&self, cfg: &mut Config, value: Value) -> Result<(), String> {
        match &self.access {
            Access::Field { set, .. } => {
                set(cfg, value);
                Ok(())
            }
            Access::Pinned(only) => {
                let given = self.kind.format(&value);
                if given == *only {
                    Ok(())
                } else {
                    Err(format!(
                        "'{} {given}' is not supported by cachette yet (only '{} {only}' is)",
                        self.name, self.name
                    ))
                }
            }
        }
    }
}

impl Kind {
    /// Parses one argument, with Redis's error wording.
    fn parse(self, arg: &[u8]) -> Result<Value, String> {
        match self {
            Kind::Bool => {
                if arg.eq_ignore_ascii_case(b"yes") {
                    Ok(Value::Bool(true))
                } else if arg.eq_ignore_ascii_case(b"no") {
                    Ok(Value::Bool(false))
                } else {
                    Err("argument must be 'yes' or 'no'".to_owned())
                }
            }
            Kind::Int { min, max, clamp, note } => {
                let n = parse_i64_strict(arg).ok_or("argument couldn't be parsed into an integer")?;
                if n < min || n > max {
                    return Err(format!("argument must be between {min} and {max} inclusive{note}"));
                }
                Ok(Value::Int(clamp.map_or(n, |(lo, hi)| n.clamp(lo, hi))))
            }
            Kind::Memory { min, max } => {
                let n =
                    std::str::from_utf8(arg).ok().and_then(parse_memory).ok_or("argument must be a memory value")?;
                if n < min || n > max {
                    return Err(format!("argument must be between {min} and {max} inclusive"));
                }
                Ok(Value::Memory(n))
            }
            Kind::Enum(words) => words
                .iter()
                .position(|w| w.as_bytes().eq_ignore_ascii_case(arg))
                .map(Value::Enum)
                .ok_or_else(|| format!("argument(s) must be one of the following: {}", words.join(", "))),
            Kind::Str => {
                String::from_utf8(arg.to_vec()).map(Value::Str).map_err(|_| "argument must be valid UTF-8".to_owned())
            }
            // Callers split bind's words themselves; a lone word is still a valid list.
            Kind::Bind => parse_bind(&[arg.to_vec()]),
            Kind::Save => parse_save(&[arg.to_vec()]),
            Kind::Dir => {
                let text = String::from_utf8(arg.to_vec()).map_err(|_| "argument must be valid UTF-8".to_owned())?;
                let abs =
                    std::fs::canonicalize(&text).map_err(|e| format!("Can't chdir to '{text}': {}", os_error(&e)))?;
                if !abs.is_dir() {
                    return Err(format!("Can't chdir to '{text}': Not a directory"));
                }
                Ok(Value::Str(abs.display().to_string()))
            }
            Kind::FileName => {
                let text = String::from_utf8(arg.to_vec()).map_err(|_| "argument must be valid UTF-8".to_owned())?;
                if text.is_empty() || text.contains('/') || text == "." || text == ".." {
                    return Err("dbfilename can't be a path, just a filename".to_owned());
                }
                Ok(Value::Str(text))
            }
            Kind::KeyspaceEvents => crate::commands::notify::parse_flags(arg)
                .map(|f| Value::Int(i64::from(f)))
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_owned()),
            Kind::OutputLimits => parse_output_limits(&[arg.to_vec()]),
            Kind::HostPort => parse_host_port(&[arg.to_vec()]),
        }
    }

    fn format(self, value: &Value) -> String {
        match (self, value) {
            (Kind::KeyspaceEvents, Value::Int(n)) => {
                crate::commands::notify::flags_to_string(u32::try_from(*n).unwrap_or(0))
            }
            (_, Value::Limits(groups)) => {
                let names = ["normal", "slave", "pubsub"];
                let words: Vec<String> = groups
                    .iter()
                    .map(|(class, l)| format!("{} {} {} {}", names[*class], l.hard, l.soft, l.soft_secs))
                    .collect();
                words.join(" ")
            }
            (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
            (_, Value::Int(n)) => n.to_string(),
            (_, Value::Memory(n)) => n.to_string(),
            (Kind::Enum(words), Value::Enum(i)) => words.get(*i).copied().unwrap_or("").to_owned(),
            (_, Value::Enum(i)) => i.to_string(),
            (_, Value::Str(s)) => s.clone(),
            (_, Value::List(l)) => l.join(" "),
            (_, Value::SavePoints(p)) => p.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(" "),
        }
    }
}

/// The `save` default, redis-server 7's.
const DEFAULT_SAVE_POINTS: [(u64, u64); 3] = [(3600, 1), (300, 100), (60, 10000)];

/// An OS error as `strerror` words it, without Rust's " (os error N)" suffix.
fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Parses `replicaof`'s arguments: host and port as two words or one, or `""` for none. The
/// port is checked as REPLICAOF checks it.
fn parse_host_port(args: &[Vec<u8>]) -> Result<Value, String> {
    let mut words = Vec::new();
    for a in args {
        words.extend(a.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).map(<[u8]>::to_vec));
    }
    match words.as_slice() {
        [] => Ok(Value::Str(String::new())),
        [host, port] => {
            let port = parse_i64_strict(port).filter(|p| (0..=65535).contains(p)).ok_or("Invalid master port")?;
            Ok(Value::Str(format!("{} {port}", String::from_utf8_lossy(host))))
        }
        _ => Err("wrong number of arguments".to_owned()),
    }
}

/// Parses `save`'s arguments: `<seconds> <changes>` pairs, as separate words (config file) or
/// one space-separated string (CONFIG SET, `--save "3600 1"`); `""` means no save points.
fn parse_save(args: &[Vec<u8>]) -> Result<Value, String> {
    let mut words = Vec::new();
    for a in args {
        words.extend(a.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).map(<[u8]>::to_vec));
    }
    if words.len() % 2 != 0 {
        return Err("Invalid save parameters".to_owned());
    }
    let mut points = Vec::with_capacity(words.len() / 2);
    for pair in words.chunks_exact(2) {
        let n = |w: &[u8]| parse_i64_strict(w).and_then(|v| u64::try_from(v).ok());
        match (n(&pair[0]), n(&pair[1])) {
            (Some(secs), Some(changes)) => points.push((secs, changes)),
            _ => return Err("Invalid save parameters".to_owned()),
        }
    }
    Ok(Value::SavePoints(points))
}

/// Parses `client-output-buffer-limit` groups with redis-server's errors. Class names are
/// `normal`, `replica` (or `slave`) and `pubsub`; sizes take memory units.
fn parse_output_limits(args: &[Vec<u8>]) -> Result<Value, String> {
    if args.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".to_owned());
    }
    let mut groups = Vec::new();
    for g in args.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_slice() {
            b"normal" => 0,
            b"replica" | b"slave" => 1,
            b"pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".to_owned()),
        };
        let size = |w: &[u8]| std::str::from_utf8(w).ok().and_then(parse_memory);
        let secs = std::str::from_utf8(&g[3]).ok().and_then(|s| s.parse::<u64>().ok());
        let (Some(hard), Some(soft), Some(soft_secs)) = (size(&g[1]), size(&g[2]), secs) else {
            return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_owned());
        };
        groups.push((class, super::ObufLimit { hard, soft, soft_secs }));
    }
    Ok(Value::Limits(groups))
}

/// Redis's limit on `bind` addresses (`CONFIG_BINDADDR_MAX`).
const MAX_BIND_ADDRS: usize = 16;

/// Parses `bind`'s arguments. As in Redis, a single argument holding several space-separated
/// addresses (`--bind "127.0.0.1 ::1"`) is split with the config file's quoting rules. Each
/// address is an IP literal, `*` (every IPv4 interface), `::*` (every IPv6 interface) or a host
/// name, optionally prefixed with `-` to mean "skip it if it cannot be bound" (Redis's
/// `bind 127.0.0.1 -::1` for hosts without IPv6). Unlike Redis, an empty list is refused rather
/// than meaning "every interface": listening everywhere should be asked for explicitly.
fn parse_bind(args: &[Vec<u8>]) -> Result<Value, String> {
    let split;
    let args = if args.len() == 1 && !args[0].is_empty() {
        split = split_args(&args[0]).ok_or("Unbalanced quotes in bind address list")?;
        &split[..]
    } else {
        args
    };
    if args.is_empty() || (args.len() == 1 && args[0].is_empty()) {
        return Err("bind needs at least one address ('*' for every IPv4 interface, \
                    '* -::*' for every interface)"
            .to_owned());
    }
    if args.len() > MAX_BIND_ADDRS {
        return Err("Too many bind addresses specified.".to_owned());
    }
    let mut addrs = Vec::with_capacity(args.len());
    for arg in args {
        let text = String::from_utf8_lossy(arg);
        let host = text.strip_prefix('-').unwrap_or(&text);
        if !valid_bind_host(host) {
            return Err(format!("'{text}' is not an IP address, '*', '::*' or a host name"));
        }
        addrs.push(text.into_owned());
    }
    Ok(Value::List(addrs))
}

fn valid_bind_host(host: &str) -> bool {
    if host == "*" || host == "::*" || host.parse::<IpAddr>().is_ok() {
        return true;
    }
    // A link-local IPv6 address with its interface: fe80::1%eth0.
    if let Some((ip, zone)) = host.split_once('%') {
        return ip.parse::<std::net::Ipv6Addr>().is_ok()
            && !zone.is_empty()
            && zone.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    }
    !host.is_empty()
        && !host.starts_with('-')
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Finds a directive by name or alias, case-insensitively. Also returns the table spelling of the
/// name that matched, so CONFIG GET on an alias can answer under the alias.
pub fn lookup(name: &[u8]) -> Option<(&'static Directive, &'static str)> {
    find_in(DIRECTIVES, name)
}

fn find_in(table: &'static [Directive], name: &[u8]) -> Option<(&'static Directive, &'static str)> {
    table.iter().find_map(|d| {
        std::iter::once(&d.name).chain(d.aliases).find(|n| n.as_bytes().eq_ignore_ascii_case(name)).map(|n| (d, *n))
    })
}

/// Whether `name` is a redis-server 7 directive cachette does not implement (yet). Used only to
/// say so in the start-up error instead of the generic "Bad directive".
pub fn is_unsupported_redis_directive(name: &[u8]) -> bool {
    REDIS_ONLY.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}

/// Directives CONFIG GET lists only when asked by their exact name (redis-server's
/// HIDDEN_CONFIG: testing knobs).
pub static HIDDEN: &[&str] = &["rdb-key-save-delay"];

/// redis-server 7.0's directives (its CONFIG GET * names, plus the config-file-only
/// `rename-command`, `user`, `loadmodule`, `sentinel` and the deprecated names it still
/// swallows) minus those in [`DIRECTIVES`].
static REDIS_ONLY: &[&str] = &[
    "acl-pubsub-default",
    "active-defrag-cycle-max",
    "active-defrag-cycle-min",
    "active-defrag-ignore-bytes",
    "active-defrag-max-scan-fields",
    "active-defrag-threshold-lower",
    "active-defrag-threshold-upper",
    "activedefrag",
    "activerehashing",
    "always-show-logo",
    "aof-disable-auto-gc",
    "aof-rewrite-incremental-fsync",
    "aof-timestamp-enabled",
    "bind-source-addr",
    "bio_cpulist",
    "busy-reply-threshold",
    "cluster-allow-pubsubshard-when-down",
    "cluster-allow-reads-when-down",
    "cluster-allow-replica-migration",
    "cluster-announce-bus-port",
    "cluster-announce-hostname",
    "cluster-announce-ip",
    "cluster-announce-port",
    "cluster-announce-tls-port",
    "cluster-config-file",
    "cluster-enabled",
    "cluster-link-sendbuf-limit",
    "cluster-migration-barrier",
    "cluster-node-timeout",
    "cluster-port",
    "cluster-preferred-endpoint-type",
    "cluster-replica-no-failover",
    "cluster-replica-validity-factor",
    "cluster-require-full-coverage",
    "cluster-slave-no-failover",
    "cluster-slave-validity-factor",
    "crash-log-enabled",
    "crash-memcheck-enabled",
    "disable-thp",
    "dynamic-hz",
    "enable-module-command",
    "enable-protected-configs",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "hll-sparse-max-bytes",
    "ignore-warnings",
    "io-threads",
    "io-threads-do-reads",
    "jemalloc-bg-thread",
    "latency-tracking-info-percentiles",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "list-compress-depth",
    "list-max-listpack-size",
    "list-max-ziplist-entries",
    "list-max-ziplist-size",
    "list-max-ziplist-value",
    "loadmodule",
    "lua-replicate-commands",
    "lua-time-limit",
    "maxmemory-clients",
    "no-appendfsync-on-rewrite",
    "oom-score-adj",
    "oom-score-adj-values",
    "pidfile",
    "proc-title-template",
    "propagation-error-behavior",
    "rename-command",
    "repl-disable-tcp-nodelay",
    "replica-ignore-disk-write-errors",
    "replica-lazy-flush",
    "sanitize-dump-payload",
    "sentinel",
    "server_cpulist",
    "set-max-intset-entries",
    "set-proc-title",
    "shutdown-on-sigint",
    "shutdown-on-sigterm",
    "shutdown-timeout",
    "slave-lazy-flush",
    "socket-mark-id",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "syslog-enabled",
    "syslog-facility",
    "syslog-ident",
    "tls-auth-clients",
    "tls-ca-cert-dir",
    "tls-ca-cert-file",
    "tls-cert-file",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-cluster",
    "tls-dh-params-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-port",
    "tls-prefer-server-ciphers",
    "tls-protocols",
    "tls-replication",
    "tls-session-cache-size",
    "tls-session-cache-timeout",
    "tls-session-caching",
    "tracking-table-max-keys",
    "unixsocket",
    "unixsocketperm",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-entries",
    "zset-max-ziplist-value",
];

/// Redis's `string2ll` (see `types::string::parse_i64`): `010`, `+1`, `-0` and ` 1` are all
/// rejected, as redis-server 7.0.15's CONFIG SET rejects them.
pub(crate) fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    crate::types::string::parse_i64(s)
}

/// Parses a memory size the way Redis's `memtoull` does: ASCII digits followed by an optional,
/// case-insensitive unit — `b` (bytes), `k` = 1000, `kb` = 1024, `m` = 1000², `mb` = 1024²,
/// `g` = 1000³, `gb` = 1024³. Anything else (a sign, spaces, a fraction, an unknown unit, a
/// product that overflows) is `None`.
///
/// Two of `memtoull`'s quirks are kept so that range errors match Redis's: a missing number reads
/// as 0 (`""` and `"mb"` are `Some(0)`), and a digit string too large for 64 bits saturates to
/// `u64::MAX`, as `strtoull` does, so the caller's range check rejects it.
pub fn parse_memory(s: &str) -> Option<u64> {
    let split = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // `memtoull` copies the digits into a 128-byte buffer and gives up on longer ones.
    if digits.len() >= 128 {
        return None;
    }
    let value = if digits.is_empty() { 0 } else { digits.parse::<u64>().unwrap_or(u64::MAX) };
    value.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limits_parse_as_redis_server_does() {
        let ok = |words: &[&str]| parse_output_limits(&words.iter().map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>());
        let limit = |hard, soft, soft_secs| crate::config::ObufLimit { hard, soft, soft_secs };
        assert_eq!(ok(&["pubsub", "32mb", "8mb", "60"]), Ok(Value::Limits(vec![(2, limit(32 << 20, 8 << 20, 60))])));
        assert_eq!(
            ok(&["SLAVE", "1k", "2kb", "3", "normal", "0", "0", "0"]),
            Ok(Value::Limits(vec![(1, limit(1000, 2048, 3)), (0, limit(0, 0, 0))]))
        );
        assert_eq!(ok(&[]), Ok(Value::Limits(vec![])), "an empty CONFIG SET value changes nothing");
        let err = |words: &[&str]| ok(words).expect_err("refused");
        assert_eq!(err(&["pubsub", "1mb"]), "Wrong number of arguments in buffer limit configuration.");
        assert_eq!(err(&["master", "1", "1", "1"]), "Invalid client class specified in buffer limit configuration.");
        for bad in [["pubsub", "x", "1", "1"], ["pubsub", "1", "1", "-1"], ["pubsub", "1", "-1", "1"]] {
            assert_eq!(err(&bad), "Error in hard, soft or soft_seconds setting in buffer limit configuration.");
        }
        let shown = Kind::OutputLimits.format(&Value::Limits(vec![
            (0, limit(0, 0, 0)),
            (1, limit(1, 2, 3)),
            (2, limit(4, 5, 6)),
        ]));
        assert_eq!(shown, "normal 0 0 0 slave 1 2 3 pubsub 4 5 6");
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"42"), Some(42));
        assert_eq!(parse_i64_strict(b"-42"), Some(-42));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"010",
            b"+1",
            b" 1",
            b"1 ",
            b"1.5",
            b"abc",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_i64_strict(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("100b"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1K"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2m"), Some(2_000_000));
        assert_eq!(parse_memory("2Mb"), Some(2 * 1024 * 1024));
        assert_eq!(parse_memory("3g"), Some(3_000_000_000));
        assert_eq!(parse_memory("3gB"), Some(3 * 1024 * 1024 * 1024));
        assert_eq!(parse_memory("512mb"), Some(536_870_912));
        // memtoull quirks, kept so range errors read as Redis's do.
        assert_eq!(parse_memory(""), Some(0));
        assert_eq!(parse_memory("mb"), Some(0));
        assert_eq!(parse_memory("99999999999999999999"), Some(u64::MAX));
        for bad in ["-5", "+5", " 5", "5 ", "1.5mb", "1kk", "1tb", "abc", "99999999999999999999k"] {
            assert_eq!(parse_memory(bad), None, "{bad:?}");
        }
        assert_eq!(parse_memory("17179869184gb"), None); // overflows when multiplied
    }

    #[test]
    fn bind_addresses() {
        let ok = |s: &str| parse_bind(&[s.as_bytes().to_vec()]);
        assert_eq!(ok("127.0.0.1 -::1"), Ok(Value::List(vec!["127.0.0.1".into(), "-::1".into()])));
        assert!(ok("*").is_ok());
        assert!(ok("::*").is_ok());
        assert!(ok("-*").is_ok());
        assert!(ok("localhost").is_ok());
        assert!(ok("fe80::1%eth0").is_ok());
        assert!(ok("10.0.0.1:11211").is_err());
        assert!(ok("--::1").is_err());
        assert!(ok("").is_err());
        assert!(parse_bind(&[]).is_err());
        let many: Vec<Vec<u8>> = (0..17).map(|i| format!("10.0.0.{i}").into_bytes()).collect();
        assert_eq!(parse_bind(&many), Err("Too many bind addresses specified.".to_owned()));
        assert!(parse_bind(&many[..16]).is_ok());
    }

    #[test]
    fn aliases_resolve_to_their_directive() {
        static TABLE: &[Directive] = &[Directive {
            name: "replicaof",
            aliases: &["slaveof"],
            kind: Kind::Str,
            default: DefaultValue::Literal("\"\""),
            mutable: true,
            doc: "",
            access: Access::Pinned(""),
        }];
        let (d, spelled) = find_in(TABLE, b"SLAVEOF").expect("alias found");
        assert_eq!((d.name, spelled), ("replicaof", "slaveof"));
        let (_, spelled) = find_in(TABLE, b"replicaOF").expect("name found");
        assert_eq!(spelled, "replicaof");
        assert!(find_in(TABLE, b"slave").is_none());
    }

    #[test]
    fn table_is_sane() {
        for (i, d) in DIRECTIVES.iter().enumerate() {
            assert_eq!(d.name, d.name.to_ascii_lowercase());
            assert!(!d.doc.is_empty(), "{} has no doc", d.name);
            for other in &DIRECTIVES[i + 1..] {
                assert_ne!(d.name, other.name);
            }
            assert!(!is_unsupported_redis_directive(d.name.as_bytes()), "{}", d.name);
            if let Kind::Int { min, max, clamp, .. } = d.kind {
                assert!(min <= max);
                if let Some((lo, hi)) = clamp {
                    assert!(min <= lo && lo <= hi && hi <= max);
                }
            }
        }
    }
}
