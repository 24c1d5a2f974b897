//! SASL for the memcached binary protocol: the user file and the PLAIN mechanism.
//!
//! memcached `-S` hands SASL to Cyrus SASL; with a `MEMCACHED_SASL_PWDB` file of `user:password`
//! lines it checks PLAIN logins against that file. cachette implements exactly that much itself
//! (PLAIN against such a file, configured with `memcache-sasl-pwdb`), which is what memjs,
//! pylibmc and spymemcached use, rather than linking Cyrus SASL. The wire behaviour is
//! memcached 1.6.18's with Cyrus behind it, probed:
//!
//! - `SASL LIST MECHS` answers `PLAIN`.
//! - `SASL AUTH` with mechanism `PLAIN` (any case) and data `authzid NUL user NUL password`
//!   answers `Authenticated`; an authzid other than empty or the user itself, a wrong password,
//!   a missing NUL, or another mechanism answer AUTH_ERROR `Auth failure.`.
//! - `SASL AUTH PLAIN` with no data answers AUTH_CONTINUE with an empty body; the next
//!   `SASL STEP` carries the data. A STEP at any other time is an AUTH_ERROR.
//! - Every AUTH or STEP first forgets an earlier success, so a failed re-authentication leaves
//!   the connection unauthenticated.
//!
//! With `memcache-sasl yes` and no `memcache-sasl-pwdb`, the Redis side's ACL users are the
//! SASL users ([`Users::from_acl`]): a PLAIN login succeeds for a user that is `on` and whose
//! password (or `nopass`) fits, so one `user` line serves both protocols.

use std::collections::HashMap;

/// The users SASL accepts: those of `memcache-sasl-pwdb` (user name → password), or the ACL
/// users.
#[derive(Default, Clone)]
pub struct Users {
    file: HashMap<Vec<u8>, Vec<u8>>,
    acl: Option<std::sync::Arc<crate::acl::Acl>>,
}

impl std::fmt::Debug for Users {
    /// Names only: passwords stay out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.file.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        f.debug_struct("Users").field("file", &names).field("acl", &self.acl.is_some()).finish()
    }
}

impl Users {
    /// The ACL users (no `memcache-sasl-pwdb` configured).
    pub fn from_acl(acl: std::sync::Arc<crate::acl::Acl>) -> Users {
        Users { file: HashMap::new(), acl: Some(acl) }
    }

    /// Reads a `user:password` file (see [`Users::parse`]); the error names the file.
    pub fn load(path: &str) -> Result<Users, String> {
        let text = std::fs::read(path).map_err(|e| format!("memcache-sasl-pwdb {path}: {e}"))?;
        Users::parse(&text).map_err(|e| format!("memcache-sasl-pwdb {path}: {e}"))
    }

    /// Parses `user:password` lines. Empty lines and lines starting with `#` are skipped; a line
    /// ending in `\r\n` loses the `\r`; the password is everything after the first `:`.
    pub fn parse(text: &[u8]) -> Result<Users, String> {
        let mut users = HashMap::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| format!("line {}: expected user:password", i + 1))?;
            users.insert(line[..colon].to_vec(), line[colon + 1..].to_vec());
        }
        Ok(Users { file: users, acl: None })
    }

    /// Checks a PLAIN message (`authzid NUL authcid NUL password`).
    pub fn check_plain(&self, data: &[u8]) -> bool {
        let mut parts = data.splitn(3, |&b| b == 0);
        let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        if !authzid.is_empty() && authzid != user {
            return false;
        }
        match &self.acl {
            Some(acl) => acl.authenticate(user, password).is_some(),
            None => self.file.get(user).is_some_and(|want| constant_time_eq(want, password)),
        }
    }
}

/// Compares without an early exit on the first differing byte, so the time taken does not tell
/// a guesser how much of a password was right (only its length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The one mechanism offered.
pub const MECHS: &[u8] = b"PLAIN";

/// A connection's authentication state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SaslState {
    /// Authenticated: every command is allowed.
    pub authenticated: bool,
    /// A PLAIN AUTH without data answered AUTH_CONTINUE: the next STEP carries the data.
    pub awaiting_step: bool,
}

/// What an AUTH or STEP answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `Authenticated`.
    Ok,
    /// AUTH_CONTINUE, empty challenge.
    Continue,
    /// AUTH_ERROR.
    Failed,
}

impl SaslState {
    /// Runs SASL AUTH (`step == false`) or SASL STEP for `mech` with `data`.
    pub fn auth(&mut self, users: &Users, step: bool, mech: &[u8], data: &[u8]) -> Outcome {
        let awaiting = std::mem::take(&mut self.awaiting_step);
        self.authenticated = false;
        let plain = mech.eq_ignore_ascii_case(b"PLAIN");
        let outcome = match (step, plain) {
            (false, true) if data.is_empty() => {
                self.awaiting_step = true;
                Outcome::Continue
            }
            (false, true) => ok_if(users.check_plain(data)),
            (true, true) if awaiting => ok_if(users.check_plain(data)),
            _ => Outcome::Failed,
        };
        self.authenticated = outcome == Outcome::Ok;
        outcome
    }
}

fn ok_if(ok: bool) -> Outcome {
    if ok {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        Users::parse(b"# users\ntestuser:testpass\r\n\nother:with:colon\n").expect("parses")
    }

    #[test]
    fn pwdb_format() {
        let u = users();
        assert!(u.check_plain(b"\0testuser\0testpass"));
        assert!(u.check_plain(b"\0other\0with:colon"));
        assert!(Users::parse(b"nocolon\n").expect_err("bad line").contains("line 1"));
    }

    #[test]
    fn plain_like_memcached_with_cyrus() {
        // Each case probed against memcached 1.6.18 -S with a user testuser/testpass.
        let u = users();
        assert!(u.check_plain(b"testuser\0testuser\0testpass"), "authzid = user");
        assert!(!u.check_plain(b"other\0testuser\0testpass"), "authzid of someone else");
        assert!(!u.check_plain(b"\0testuser\0wrong"));
        assert!(!u.check_plain(b"\0testuser"), "no password part");
        assert!(!u.check_plain(b"\0testuser\0testpass\0"), "trailing NUL");
        assert!(!u.check_plain(b"\0nobody\0testpass"));
    }

    #[test]
    fn acl_users_when_there_is_no_password_file() {
        let acl = std::sync::Arc::new(crate::acl::Acl::new());
        acl.set_user("app", [&b"on"[..], b">pw", b"~*", b"+@all"]).expect("setuser");
        acl.set_user("off", [&b"off"[..], b">pw"]).expect("setuser");
        let u = Users::from_acl(acl);
        assert!(u.check_plain(b"\0app\0pw"));
        assert!(u.check_plain(b"app\0app\0pw"));
        assert!(!u.check_plain(b"\0app\0wrong"));
        assert!(!u.check_plain(b"\0off\0pw"), "a user that is off");
        assert!(!u.check_plain(b"other\0app\0pw"), "authzid of someone else");
    }

    #[test]
    fn auth_and_step() {
        let u = users();
        let mut s = SaslState::default();
        assert_eq!(s.auth(&u, true, b"PLAIN", b"\0testuser\0testpass"), Outcome::Failed, "step before auth");
        assert_eq!(s.auth(&u, false, b"plain", b"\0testuser\0testpass"), Outcome::Ok);
        assert!(s.authenticated);
        assert_eq!(s.auth(&u, true, b"PLAIN", b"\0testuser\0testpass"), Outcome::Failed, "step after success");
        assert!(!s.authenticated, "a failed attempt forgets the earlier success");
        assert_eq!(s.auth(&u, false, b"PLAIN", b""), Outcome::Continue);
        assert_eq!(s.auth(&u, true, b"PLAIN", b"\0testuser\0testpass"), Outcome::Ok);
        assert_eq!(s.auth(&u, false, b"CRAM-MD5", b""), Outcome::Failed);
        assert!(!s.authenticated);
    }
}
