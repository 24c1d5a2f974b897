//! Access control: users, their passwords and permissions, authentication, and the per-command
//! permission check, as redis-server 7.0's ACL has them.
//!
//! ```text
//!   Acl (one per server, in Shared)
//!     users: name -> Arc<User>          ACL SETUSER/DELUSER/LIST, `user` directives, aclfile
//!     default: Arc<User>                never deleted; `requirepass` sets its password
//!     log: the ACL LOG ring
//!   User
//!     rules: RwLock<Rules>              on/off, passwords (SHA-256 hex), command bits,
//!                                       key patterns, channel patterns
//!     open: AtomicBool                  every command, key and channel allowed: the fast path
//! ```
//!
//! A connection holds the `Arc<User>` it authenticated as, so ACL SETUSER changes what its
//! clients may do at once, as in redis-server. The dispatcher asks [`User::is_open`] first (one
//! relaxed load); only a restricted user pays for the real check, [`Rules::check`].
//!
//! Commands are identified by their index in [`command_ids`]: every top-level spec and every
//! subcommand spec of the table, in table order. A container's rule (`+config`) covers its
//! subcommands; `+config|get` only the one. Key patterns are checked for every key of the
//! command line, found by redis-server's key specifications: a key the command reads (`access`)
//! needs read permission (`%R~` or `~`), one it inserts, updates or deletes needs write
//! permission (`%W~` or `~`), as redis-server 7.0 decides (see `key_access`).
//!
//! memcached's SASL (binary protocol) is meant to share these credentials where that makes
//! sense: with no `memcache-sasl-pwdb` file configured, a SASL PLAIN `authcid`/password pair
//! is checked with [`Acl::authenticate`], so one `user` line serves both protocols.

pub mod sha256;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::commands::{self, category, Spec};
use crate::glob::glob_match;

/// Every command and subcommand spec, indexed by command id (the table's flat order, which
/// the statistics use too).
pub fn command_ids() -> &'static [&'static Spec] {
    commands::all_specs()
}

/// The id of a spec of the table.
pub fn id_of(spec: &'static Spec) -> Option<usize> {
    Some(commands::spec_index(spec))
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The command (or subcommand) is not allowed.
    Command,
    /// The argument at this position is a key the user may not access.
    Key(usize),
    /// The argument at this position is a channel the user may not access.
    Channel(usize),
}

/// One key pattern with its permissions (`~p` = both, `%R~p`, `%W~p`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

/// Everything ACL SETUSER can change about a user. Cloned, changed and swapped in whole, so a
/// failing rule list leaves the user as it was (redis-server's SETUSER is atomic too).
#[derive(Debug, Clone)]
pub struct Rules {
    pub enabled: bool,
    pub nopass: bool,
    /// `skip-sanitize-payload` (Some(true)) or `sanitize-payload` (Some(false)) when set.
    pub sanitize: Option<bool>,
    /// SHA-256 hex digests, in the order they were added.
    pub passwords: Vec<String>,
    /// Allowed command ids.
    pub commands: Vec<bool>,
    /// Set by `+@all`/`allcommands`: commands added later are allowed too (redis-server's
    /// reserved command bit; it decides whether the rules are shown from `+@all` or `-@all`).
    pub future: bool,
    /// First arguments allowed for an otherwise denied command (`+select|0`), by command id.
    pub firstargs: BTreeMap<usize, Vec<String>>,
    pub allkeys: bool,
    pub keys: Vec<KeyPattern>,
    pub allchannels: bool,
    pub channels: Vec<Vec<u8>>,
}

/// Why a rule was refused: redis-server's wording after `Error in ACL SETUSER modifier '…': `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    Unknown,
    Syntax,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSub,
    Selectors,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
            RuleError::Selectors => "Selectors are not supported by cachette",
        }
    }
}

fn is_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

impl Rules {
    /// A new user: off, no password, no commands, keys or channels.
    pub fn new() -> Rules {
        Rules {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            commands: vec![false; command_ids().len()],
            future: false,
            firstargs: BTreeMap::new(),
            allkeys: false,
            keys: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
        }
    }

    /// True when nothing is restricted: every command, key and channel.
    pub fn is_open(&self) -> bool {
        self.allkeys && self.allchannels && self.commands.iter().all(|&c| c)
    }

    fn set_command(&mut self, spec: &'static Spec, allow: bool) {
        if let Some(id) = id_of(spec) {
            self.commands[id] = allow;
            self.firstargs.remove(&id);
        }
        for sub in spec.subcommands {
            if let Some(id) = id_of(sub) {
                self.commands[id] = allow;
            }
        }
    }

    fn set_category(&mut self, cat: u32, allow: bool) {
        for (id, spec) in command_ids().iter().enumerate() {
            if category::of(spec) & cat != 0 {
                // A container in the category sets its subcommands too, as redis-server does.
                self.commands[id] = allow;
                self.firstargs.remove(&id);
                for sub in spec.subcommands {
                    if let Some(sid) = id_of(sub) {
                        self.commands[sid] = allow;
                    }
                }
            }
        }
    }

    /// Applies one rule (ACL SETUSER argument, `user` directive word), case-insensitive as
    /// redis-server takes them.
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"skip-sanitize-payload" => self.sanitize = Some(true),
            b"sanitize-payload" => self.sanitize = Some(false),
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"allkeys" => {
                self.allkeys = true;
                self.keys.clear();
            }
            b"resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
            }
            b"allchannels" => {
                self.allchannels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => {
                self.commands.iter_mut().for_each(|c| *c = true);
                self.future = true;
                self.firstargs.clear();
            }
            b"nocommands" | b"-@all" => {
                self.commands.iter_mut().for_each(|c| *c = false);
                self.future = false;
                self.firstargs.clear();
            }
            b"reset" => {
                *self = Rules::new();
                self.sanitize = Some(false);
            }
            _ => return self.apply_prefixed(op, &lower),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, op: &[u8], lower: &[u8]) -> Result<(), RuleError> {
        match op.first() {
            Some(b'>') => {
                let h = sha256::hex(&op[1..]);
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            Some(b'#') => {
                if !is_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                let h = String::from_utf8_lossy(&op[1..]).into_owned();
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            Some(b'<') | Some(b'!') => {
                let h = if op[0] == b'<' {
                    sha256::hex(&op[1..])
                } else {
                    if !is_hash(&op[1..]) {
                        return Err(RuleError::BadHash);
                    }
                    String::from_utf8_lossy(&op[1..]).into_owned()
                };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != h);
                if self.passwords.len() == before {
                    return Err(RuleError::NoSuchPassword);
                }
            }
            Some(b'~') | Some(b'%') => self.add_key_pattern(op)?,
            Some(b'&') => {
                if self.allchannels {
                    return Err(RuleError::ChannelAfterAll);
                }
                let p = &op[1..];
                if p == b"*" {
                    self.allchannels = true;
                    self.channels.clear();
                } else if !self.channels.iter().any(|c| c == p) {
                    self.channels.push(p.to_vec());
                }
            }
            Some(b'(') => return Err(RuleError::Selectors),
            Some(&sign @ (b'+' | b'-')) => {
                let allow = sign == b'+';
                let name = &lower[1..];
                if let Some(cat) = name.strip_prefix(b"@") {
                    let bit = category::by_name(cat).ok_or(RuleError::Unknown)?;
                    self.set_category(bit, allow);
                } else if let Some(bar) = name.iter().position(|&b| b == b'|') {
                    let top = commands::lookup(&name[..bar]).ok_or(RuleError::Unknown)?;
                    let sub = &name[bar + 1..];
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if sub.contains(&b'|') {
                        return Err(RuleError::FirstArgOfSub);
                    }
                    if !top.subcommands.is_empty() {
                        let spec = commands::lookup_sub(top, sub).ok_or(RuleError::Unknown)?;
                        self.set_command(spec, allow);
                    } else if allow {
                        // redis-server's deprecated first-argument rule (`+select|0`).
                        let id = id_of(top).ok_or(RuleError::Unknown)?;
                        let list = self.firstargs.entry(id).or_default();
                        let sub = String::from_utf8_lossy(sub).into_owned();
                        if !list.contains(&sub) {
                            list.push(sub);
                        }
                    } else {
                        return Err(RuleError::Unknown);
                    }
                } else {
                    let spec = commands::lookup(name).ok_or(RuleError::Unknown)?;
                    self.set_command(spec, allow);
                }
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::KeyAfterAll);
        }
        let (read, write, pattern) = if op[0] == b'%' {
            let tilde = op.iter().position(|&b| b == b'~').ok_or(RuleError::Syntax)?;
            let (mut r, mut w) = (false, false);
            for &c in &op[1..tilde] {
                match c.to_ascii_uppercase() {
                    b'R' => r = true,
                    b'W' => w = true,
                    _ => return Err(RuleError::Syntax),
                }
            }
            if !r && !w {
                return Err(RuleError::Syntax);
            }
            (r, w, &op[tilde + 1..])
        } else {
            (true, true, &op[1..])
        };
        if pattern == b"*" && read && write {
            self.allkeys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern { pattern: pattern.to_vec(), read, write }),
        }
        Ok(())
    }

    /// True when `password` opens this user (ignores on/off).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        self.nopass || {
            let h = sha256::hex(password);
            // Every stored hash is compared, so timing does not say which one matched.
            self.passwords.iter().fold(false, |ok, p| ok | (p.as_bytes() == h.as_bytes()))
        }
    }

    /// May this user access `key` for reading and/or writing?
    pub fn key_allowed(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.allkeys
            || self.keys.iter().any(|k| (!read || k.read) && (!write || k.write) && glob_match(&k.pattern, key, false))
    }

    /// May this user use `channel`? With `is_pattern` (PSUBSCRIBE) the pattern itself must be
    /// one of the user's patterns, literally, as redis-server requires; a plain channel must
    /// match one of them.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| if is_pattern { p == channel } else { glob_match(p, channel, false) })
    }

    /// The permission check for one command line (`arg(i)` is argument i).
    pub fn check<'a>(&self, spec: &'static Spec, argc: usize, arg: impl Fn(usize) -> &'a [u8]) -> Result<(), Denied> {
        let id = id_of(spec).ok_or(Denied::Command)?;
        if !self.commands[id] {
            let first_ok = argc > 1
                && self.firstargs.get(&id).is_some_and(|l| l.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(arg(1))));
            if !first_ok {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys {
            for (pos, read, write) in key_access(spec, argc, &arg) {
                if !self.key_allowed(arg(pos), read, write) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.allchannels {
            if let Some((positions, is_pattern)) = channel_positions(spec.name, argc) {
                for pos in positions {
                    if !self.channel_allowed(arg(pos), is_pattern) {
                        return Err(Denied::Channel(pos));
                    }
                }
            }
        }
        Ok(())
    }

    /// The flags as ACL GETUSER lists them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(true) => f.push("skip-sanitize-payload"),
            Some(false) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// The key patterns as redis-server writes them (`~*` for allkeys).
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".to_owned();
        }
        let mut out = Vec::new();
        for k in &self.keys {
            let prefix = match (k.read, k.write) {
                (true, true) => "~",
                (true, false) => "%R~",
                _ => "%W~",
            };
            out.push(format!("{prefix}{}", String::from_utf8_lossy(&k.pattern)));
        }
        out.join(" ")
    }

    /// The channel patterns (`&*` for allchannels).
    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".to_owned();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    /// The command rules, rebuilt from the permission bits as redis-server 7.0 does: `+@all` or
    /// `-@all`, then greedily the category that fits the remaining differences best, then the
    /// single commands that still differ. So the text depends on the command table: cachette's
    /// is smaller than redis-server's, and a rule set mixing categories may read differently.
    pub fn describe_commands(&self) -> String {
        let additive = !self.future;
        let mut rules = vec![if additive { "-@all".to_owned() } else { "+@all".to_owned() }];
        let mut fake = Rules::new();
        if !additive {
            let _ = fake.apply(b"+@all");
        }
        let mut temp = self.clone();
        let mut applied = [false; category::NAMES.len()];
        let cats: Vec<u32> = command_ids().iter().map(|s| category::of(s)).collect();
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0usize);
            for (j, _) in category::NAMES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (mut on, mut off) = (0usize, 0usize);
                for (id, c) in cats.iter().enumerate() {
                    if c & (1 << j) != 0 {
                        if temp.commands[id] {
                            on += 1;
                        } else {
                            off += 1;
                        }
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.set_category(1 << j, additive);
            temp.set_category(1 << j, !additive);
            rules.push(format!("{}@{}", if additive { '+' } else { '-' }, category::NAMES[j]));
            applied[j] = true;
        }
        for (id, spec) in command_ids().iter().enumerate() {
            let user = self.commands[id];
            if user != fake.commands[id] {
                rules.push(format!("{}{}", if user { '+' } else { '-' }, spec.name));
                fake.set_command(spec, user);
            }
            if !user {
                for a in self.firstargs.get(&id).into_iter().flatten() {
                    rules.push(format!("+{}|{a}", spec.name));
                }
            }
        }
        rules.join(" ")
    }

    /// The whole user as one ACL LIST / ACL file line, after `user <name> `.
    pub fn describe(&self) -> String {
        let mut out: Vec<String> = self.flag_names().iter().map(|s| s.to_string()).collect();
        out.extend(self.passwords.iter().map(|p| format!("#{p}")));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            out.push(keys);
        }
        if self.allchannels {
            out.push("&*".to_owned());
        } else {
            out.push("resetchannels".to_owned());
            let ch = self.describe_channels();
            if !ch.is_empty() {
                out.push(ch);
            }
        }
        out.push(self.describe_commands());
        out.join(" ")
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new()
    }
}

/// One ACL user. See the module documentation.
#[derive(Debug)]
pub struct User {
    pub name: String,
    rules: RwLock<Rules>,
    open: AtomicBool,
}

impl User {
    fn new(name: &str, rules: Rules) -> User {
        let open = AtomicBool::new(rules.is_open());
        User { name: name.to_owned(), rules: RwLock::new(rules), open }
    }

    /// A user that may run everything, for the server's own sessions (the AOF loader), as
    /// redis-server's AOF client runs without ACL checks.
    pub fn unrestricted(name: &str) -> User {
        let mut rules = Rules::new();
        rules.enabled = true;
        rules.nopass = true;
        rules.commands.iter_mut().for_each(|c| *c = true);
        rules.future = true;
        rules.allkeys = true;
        rules.allchannels = true;
        User::new(name, rules)
    }

    /// True when the user may run everything: the dispatcher's fast path.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// A read view of the rules.
    pub fn rules(&self) -> std::sync::RwLockReadGuard<'_, Rules> {
        self.rules.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `ops` all or nothing.
    pub fn update<'a>(&self, ops: impl IntoIterator<Item = &'a [u8]>) -> Result<(), (Vec<u8>, RuleError)> {
        let mut w = self.rules.write().unwrap_or_else(|p| p.into_inner());
        let mut next = w.clone();
        for op in ops {
            next.apply(op).map_err(|e| (op.to_vec(), e))?;
        }
        self.open.store(next.is_open(), Ordering::Relaxed);
        *w = next;
        Ok(())
    }

    fn replace(&self, rules: Rules) {
        let mut w = self.rules.write().unwrap_or_else(|p| p.into_inner());
        self.open.store(rules.is_open(), Ordering::Relaxed);
        *w = rules;
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    /// Unix ms of the latest occurrence.
    pub ctime: u64,
    pub client_info: String,
}

/// The server's users and ACL log. See the module documentation.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    /// The default user (also in `users`): never deleted, so connections can hold it cheaply.
    pub default: Arc<User>,
    log: Mutex<Vec<LogEntry>>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

/// An ACL problem found while loading users (config `user` lines or the aclfile).
pub type LoadError = String;

impl Acl {
    /// The default user alone: `on nopass ~* &* +@all`.
    pub fn new() -> Acl {
        let default = Arc::new(User::new("default", Self::default_rules()));
        let mut users = BTreeMap::new();
        users.insert("default".to_owned(), default.clone());
        Acl { users: RwLock::new(users), default, log: Mutex::new(Vec::new()) }
    }

    fn default_rules() -> Rules {
        let mut r = Rules::new();
        for op in [&b"on"[..], b"nopass", b"~*", b"&*", b"+@all"] {
            let _ = r.apply(op);
        }
        r
    }

    /// True when connections need no AUTH: the default user is on and has `nopass`
    /// (redis-server's `authRequired` is the negation, for unauthenticated clients).
    pub fn default_is_open_door(&self) -> bool {
        let r = self.default.rules();
        r.nopass && r.enabled
    }

    /// A user by name.
    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        let name = std::str::from_utf8(name).ok()?;
        self.users.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Every user, sorted by name (as redis-server's rax lists them).
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Checks a username/password pair: the user when it exists, is on and the password fits.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let user = self.user(name)?;
        let ok = {
            let r = user.rules();
            r.enabled && r.password_ok(password)
        };
        ok.then_some(user)
    }

    /// ACL SETUSER: creates the user when missing, then applies `ops` all or nothing.
    pub fn set_user<'a>(
        &self,
        name: &str,
        ops: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), (Vec<u8>, RuleError)> {
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        match users.get(name) {
            Some(u) => u.update(ops),
            None => {
                let u = User::new(name, Rules::new());
                u.update(ops)?;
                users.insert(name.to_owned(), Arc::new(u));
                Ok(())
            }
        }
    }

    /// ACL DELUSER of one user; false when there is none. The caller refuses `default`.
    pub fn delete_user(&self, name: &[u8]) -> bool {
        let Ok(name) = std::str::from_utf8(name) else { return false };
        self.users.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some()
    }

    /// `requirepass`: sets the default user's only password, or `nopass` when empty.
    pub fn set_requirepass(&self, pass: &[u8]) {
        let mut op = vec![b'>'];
        op.extend_from_slice(pass);
        let ops: [&[u8]; 2] = if pass.is_empty() { [b"nopass", b"nopass"] } else { [b"resetpass", &op] };
        let _ = self.default.update(ops);
    }

    /// Replaces every user by the `user` lines of `text` (an ACL file), all or nothing. The
    /// default user keeps its identity (connections hold it) and takes the file's rules, or its
    /// initial rules when the file does not mention it. Returns the users that were replaced,
    /// whose connections the caller closes.
    pub fn load(&self, text: &str, file: &str) -> Result<Vec<String>, LoadError> {
        let mut parsed: BTreeMap<String, Rules> = BTreeMap::new();
        let mut errors = String::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            if words.len() < 2 || words[0] != "user" {
                errors.push_str(&format!("{file}:{n} should start with user keyword followed by the username. "));
                continue;
            }
            let mut rules = Rules::new();
            if let Some((op, e)) = words[2..].iter().find_map(|w| rules.apply(w.as_bytes()).err().map(|e| (w, e))) {
                errors.push_str(&format!("{file}:{n}: Error in applying operation '{op}': {}. ", e.message()));
                continue;
            }
            let name = words[1].to_owned();
            if parsed.contains_key(&name) {
                errors.push_str(&format!("WARNING: Duplicate user '{name}' found on line {n}. "));
                continue;
            }
            parsed.insert(name, rules);
        }
        if !errors.is_empty() {
            return Err(
                errors + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
            );
        }
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        let replaced: Vec<String> = users.keys().filter(|n| *n != "default").cloned().collect();
        users.retain(|n, _| n == "default");
        let default_rules = parsed.remove("default").unwrap_or_else(Self::default_rules);
        self.default.replace(default_rules);
        for (name, rules) in parsed {
            users.insert(name.clone(), Arc::new(User::new(&name, rules)));
        }
        Ok(replaced)
    }

    /// Applies a config-file `user <name> <rules…>` directive (creating or updating the user).
    pub fn apply_directive(&self, words: &[&str]) -> Result<(), LoadError> {
        let rules = parse_user_line(words)?;
        let name = words[1];
        if name == "default" {
            self.default.replace(rules);
        } else {
            self.users
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_owned(), Arc::new(User::new(name, rules)));
        }
        Ok(())
    }

    /// The ACL file text: one `user` line per user, as ACL LIST shows them.
    pub fn save_text(&self) -> String {
        self.users().iter().map(|u| format!("user {} {}\n", u.name, u.rules().describe())).collect()
    }

    /// Records a denial in ACL LOG: an entry like a recent one (same reason, context, object
    /// and user, within 60 s) is counted again and moved to the front, as redis-server does.
    pub fn log(&self, mut entry: LogEntry, max_len: usize) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = log.iter().position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && entry.ctime.saturating_sub(e.ctime) < 60_000
        }) {
            let old = log.remove(i);
            entry.count = old.count + 1;
        }
        log.insert(0, entry);
        log.truncate(max_len);
    }

    /// The newest `count` log entries.
    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).iter().take(count).cloned().collect()
    }

    /// ACL LOG RESET.
    pub fn log_reset(&self) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Trims the log to `max_len` (CONFIG SET acllog-max-len).
    pub fn log_trim(&self, max_len: usize) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).truncate(max_len);
    }
}

/// `user <name> <rule> …` into rules (starting from a new user's).
fn parse_user_line(words: &[&str]) -> Result<Rules, LoadError> {
    if words.len() < 2 || !words[0].eq_ignore_ascii_case("user") {
        return Err("should start with user keyword".to_owned());
    }
    let mut rules = Rules::new();
    for w in &words[2..] {
        rules.apply(w.as_bytes()).map_err(|e| format!("Error in user declaration '{w}': {}", e.message()))?;
    }
    Ok(rules)
}

/// Start-up: the `user` directives, `requirepass`, then the aclfile, as redis-server loads
/// them; an aclfile together with `user` directives is refused, as redis-server refuses it.
pub fn configure(shared: &crate::server::Shared) -> Result<(), String> {
    let (users, pass, file) = {
        let c = shared.config();
        (c.users.clone(), c.requirepass.clone(), c.aclfile.clone())
    };
    if !users.is_empty() && !file.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is \
                    invalid. This setup is very likely to lead to configuration errors and security holes, please \
                    define either an ACL file or declare users directly in your redis.conf, but not both."
            .to_owned());
    }
    if !pass.is_empty() {
        shared.acl.set_requirepass(pass.as_bytes());
    }
    for words in &users {
        let mut line: Vec<&str> = vec!["user"];
        line.extend(words.iter().map(String::as_str));
        shared.acl.apply_directive(&line)?;
    }
    if !file.is_empty() {
        crate::commands::acl::load_file(shared, &file)?;
    }
    Ok(())
}

/// The reply to a client refused by protected mode, then closed (redis-server 7.0's words).
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// redis-server 7.0's protected mode: with `protected-mode yes` and a default user that has
/// `nopass`, a client from anywhere but the loopback interface is refused with [`DENIED`]
/// (whatever `bind` says; binding to loopback only keeps such clients out anyway).
pub fn protected_mode_denies(shared: &crate::server::Shared, peer: std::net::IpAddr) -> bool {
    let loopback = match peer {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    !loopback && shared.config().protected_mode && shared.acl.default.rules().nopass
}

/// The keys of a command line with the access each needs, (position, read, write), as
/// redis-server 7.0 decides it from the flags of the key spec that finds the key: `access`
/// needs read permission, `insert`, `delete` and `update` write permission (SET without GET
/// only writes; GETDEL reads and writes). A command without key specs falls back on the
/// table's key positions and its read-only / write flag.
fn key_access<'a>(spec: &'static Spec, argc: usize, arg: &impl Fn(usize) -> &'a [u8]) -> Vec<(usize, bool, bool)> {
    use crate::commands::server::{keys_by_specs, variable_flags};
    let args: Vec<&[u8]> = (0..argc).map(arg).collect();
    match keys_by_specs(spec, &args) {
        Ok(Some(keys)) if !spec.has(commands::flags::MOVABLE_KEYS) || !keys.is_empty() => keys
            .into_iter()
            .map(|(pos, flags)| {
                let flags = variable_flags(spec, &args, flags);
                let has = |f: &str| flags.contains(&f);
                (pos, has("access"), has("insert") || has("delete") || has("update"))
            })
            .collect(),
        // A key count that runs past the line: the command refuses it itself, touching nothing.
        Err(_) => Vec::new(),
        _ => spec
            .all_key_positions(argc, arg)
            .into_iter()
            .map(|p| (p, spec.has(commands::flags::READONLY), spec.has(commands::flags::WRITE)))
            .collect(),
    }
}

/// The channel arguments of the pub/sub commands redis-server 7.0 checks against `&pattern`
/// rules, and whether they are patterns: PUBLISH/SPUBLISH their channel, SUBSCRIBE/SSUBSCRIBE
/// every channel, PSUBSCRIBE every pattern. The dispatcher checks them with the rest, so the
/// pub/sub handlers need no ACL code of their own.
fn channel_positions(name: &str, argc: usize) -> Option<(std::ops::Range<usize>, bool)> {
    match name {
        "publish" | "spublish" => Some((1..2.min(argc), false)),
        "subscribe" | "ssubscribe" => Some((1..argc, false)),
        "psubscribe" => Some((1..argc, true)),
        _ => None,
    }
}

/// May `user` use `channel`? For the pub/sub commands: PUBLISH, SUBSCRIBE and SSUBSCRIBE check
/// each channel, PSUBSCRIBE each pattern (`is_pattern`, matched literally against the user's
/// patterns, as redis-server does). Cheap for users with `allchannels`.
pub fn channel_allowed(user: &User, channel: &[u8], is_pattern: bool) -> bool {
    user.is_open() || user.rules().channel_allowed(channel, is_pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(ops: &[&str]) -> Rules {
        let mut r = Rules::new();
        for op in ops {
            r.apply(op.as_bytes()).unwrap_or_else(|e| panic!("{op}: {e:?}"));
        }
        r
    }

    fn allowed(r: &Rules, line: &[&str]) -> Result<(), Denied> {
        let top = commands::lookup(line[0].as_bytes()).expect("known command");
        let spec =
            if top.subcommands.is_empty() { top } else { commands::lookup_sub(top, line[1].as_bytes()).expect("sub") };
        r.check(spec, line.len(), |i| line[i].as_bytes())
    }

    #[test]
    fn the_application_user_of_the_issue() {
        let r = rules(&["on", ">secret", "~app:*", "+@read", "+@write", "-@dangerous"]);
        assert!(allowed(&r, &["get", "app:1"]).is_ok());
        assert!(allowed(&r, &["set", "app:1", "v"]).is_ok());
        assert!(allowed(&r, &["mset", "app:1", "v", "app:2", "w"]).is_ok());
        assert_eq!(allowed(&r, &["mset", "app:1", "v", "other", "w"]), Err(Denied::Key(3)));
        assert_eq!(allowed(&r, &["get", "other"]), Err(Denied::Key(1)));
        assert_eq!(allowed(&r, &["flushall"]), Err(Denied::Command));
        assert_eq!(allowed(&r, &["keys", "*"]), Err(Denied::Command));
        assert_eq!(allowed(&r, &["config", "get", "port"]), Err(Denied::Command));
        assert!(r.password_ok(b"secret") && !r.password_ok(b"nope"));
        assert!(!r.is_open());
    }

    #[test]
    fn subcommands_and_read_write_patterns() {
        let r = rules(&["+config|get", "%R~r:*", "%W~w:*"]);
        assert!(allowed(&r, &["config", "get", "port"]).is_ok());
        assert_eq!(allowed(&r, &["config", "set", "port", "1"]), Err(Denied::Command));
        let r = rules(&["+@all", "%R~r:*", "%W~w:*"]);
        assert!(allowed(&r, &["get", "r:1"]).is_ok());
        assert_eq!(allowed(&r, &["get", "w:1"]), Err(Denied::Key(1)));
        assert!(allowed(&r, &["set", "w:1", "v"]).is_ok());
        assert_eq!(allowed(&r, &["set", "r:1", "v"]), Err(Denied::Key(1)));
        assert_eq!(r.describe_keys(), "%R~r:* %W~w:*");
    }

    #[test]
    fn rule_errors_as_redis_words_them() {
        let mut r = Rules::new();
        assert_eq!(r.apply(b"+nosuch"), Err(RuleError::Unknown));
        assert_eq!(r.apply(b"+@nosuch"), Err(RuleError::Unknown));
        assert_eq!(r.apply(b"foo"), Err(RuleError::Syntax));
        assert_eq!(r.apply(b"#abc"), Err(RuleError::BadHash));
        assert_eq!(r.apply(b"<nope"), Err(RuleError::NoSuchPassword));
        assert_eq!(r.apply(b"+config|get|x"), Err(RuleError::FirstArgOfSub));
        assert_eq!(r.apply(b"+config|nosuch"), Err(RuleError::Unknown));
        r.apply(b"~*").expect("allkeys");
        assert_eq!(r.apply(b"~x"), Err(RuleError::KeyAfterAll));
        r.apply(b"&*").expect("allchannels");
        assert_eq!(r.apply(b"&x"), Err(RuleError::ChannelAfterAll));
    }

    #[test]
    fn descriptions_match_redis_for_simple_users() {
        assert_eq!(Acl::default_rules().describe(), "on nopass ~* &* +@all");
        assert_eq!(Rules::new().describe(), "off resetchannels -@all");
        let r = rules(&["on", ">p", "~app:*", "+get"]);
        assert_eq!(
            r.describe(),
            "on #148de9c5a7a44d19e56cd9ae1a554bf67847afb0c58f6e12fa29ac7ddfca9940 ~app:* resetchannels -@all +get"
        );
        assert_eq!(rules(&["+@all", "-get"]).describe_commands(), "+@all -get");
        assert_eq!(rules(&["+@string"]).describe_commands(), "-@all +@string");
    }

    #[test]
    fn channels() {
        let r = rules(&["&news.*"]);
        assert!(r.channel_allowed(b"news.today", false));
        assert!(!r.channel_allowed(b"sport", false));
        assert!(r.channel_allowed(b"news.*", true));
        assert!(!r.channel_allowed(b"news.t*", true));
    }

    #[test]
    fn acl_file_round_trip() {
        let acl = Acl::new();
        acl.set_user("app", [&b"on"[..], b">pw", b"~app:*", b"+@read"]).expect("setuser");
        let text = acl.save_text();
        let other = Acl::new();
        other.load(&text, "f").expect("load");
        assert_eq!(other.save_text(), text);
        assert!(other.authenticate(b"app", b"pw").is_some());
        assert!(other.authenticate(b"app", b"no").is_none());
        assert_eq!(
            other.load("user x +nosuch", "f.acl"),
            Err("f.acl:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. \
                 WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
                .to_owned())
        );
    }
}
