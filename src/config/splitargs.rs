//! Splitting a config line into arguments exactly as Redis's `sdssplitargs` does, so a
//! redis.conf line means the same thing to cachette as to redis-server.
//!
//! ```text
//! foo bar             -> ["foo", "bar"]
//! "a b" 'c d'         -> ["a b", "c d"]
//! "\x41\n\"" 'it\'s'  -> ["A\n\"", "it's"]     (escapes: \xHH \n \r \t \b \a \<any>)
//! ab"c d"e            -> error: a closing quote must be followed by a space or the end
//! "abc                -> error: unterminated quotes
//! x"y z"              -> ["xy z"]              (a quote may start mid-token)
//! ```
//!
//! Double-quoted strings take the escapes above; single-quoted ones only `\'`. Arguments are
//! bytes: `\xHH` can produce any byte, so callers decide what to do with non-UTF-8.

/// Splits `line` into arguments; `None` when quotes are unbalanced or a closing quote is
/// followed by something other than whitespace (Redis: "Unbalanced quotes in configuration
/// line"). An empty or blank line gives no arguments. Like the C original, a NUL byte ends the
/// line.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let at = |i: usize| line.get(i).copied();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while at(i).is_some_and(is_c_space) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(i);
            if in_double {
                match c {
                    None => return None, // unterminated
                    Some(b'\\')
                        if at(i + 1) == Some(b'x')
                            && at(i + 2).is_some_and(|b| b.is_ascii_hexdigit())
                            && at(i + 3).is_some_and(|b| b.is_ascii_hexdigit()) =>
                    {
                        current.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                        i += 3;
                    }
                    Some(b'\\') if at(i + 1).is_some() => {
                        i += 1;
                        current.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if at(i + 1).is_some_and(|b| !is_c_space(b)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else if in_single {
                match c {
                    None => return None,
                    Some(b'\\') if at(i + 1) == Some(b'\'') => {
                        i += 1;
                        current.push(b'\'');
                    }
                    Some(b'\'') => {
                        if at(i + 1).is_some_and(|b| !is_c_space(b)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else {
                match c {
                    // Only these end an unquoted token (not \v or \f, unlike the blank skip).
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => current.push(other),
                }
            }
            i += 1;
        }
        args.push(current);
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10, // callers checked is_ascii_hexdigit
    }
}

#[cfg(test)]
mod tests {
    use super::split_args;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| v.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect())
    }

    fn ok(s: &str, want: &[&str]) {
        assert_eq!(split(s), Some(want.iter().map(|w| w.to_string()).collect()), "{s:?}");
    }

    #[test]
    fn plain_words() {
        ok("", &[]);
        ok("   \t ", &[]);
        ok("port 6379", &["port", "6379"]);
        ok("  bind   a\tb  ", &["bind", "a", "b"]);
        ok("a\x0bb", &["a\x0bb"]); // \v skips as blank but does not end a token
    }

    #[test]
    fn quotes() {
        ok("logfile \"\"", &["logfile", ""]);
        ok("x 'a b' \"c d\"", &["x", "a b", "c d"]);
        ok("x ab\"c d\"", &["x", "abc d"]);
        ok("x \"a\\x41\\n\\t\\\"\\q\"", &["x", "aA\n\t\"q"]);
        ok("x \"\\x4\"", &["x", "x4"]); // not a full \xHH: backslash escapes the x
        ok("x 'it\\'s' 'a\\nb'", &["x", "it's", "a\\nb"]);
        ok("x \"a\"\t", &["x", "a"]);
        assert_eq!(split("x \"abc"), None);
        assert_eq!(split("x 'abc"), None);
        assert_eq!(split("x \"a\"b"), None);
        assert_eq!(split("x 'a'b"), None);
        assert_eq!(split("x \"abc\\"), None);
    }

    #[test]
    fn bytes_and_nul() {
        assert_eq!(split_args(b"x \"\\xff\\x00\""), Some(vec![b"x".to_vec(), vec![0xff, 0]]));
        assert_eq!(split_args(b"a b\0c d"), Some(vec![b"a".to_vec(), b"b".to_vec()]));
    }
}
