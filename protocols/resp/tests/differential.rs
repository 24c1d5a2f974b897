//! Differential test of the request parser against a real redis-server.
//!
//! Generates a few hundred request streams (valid PING/ECHO commands, multibulk and inline, then
//! mutated with the bytes the parser cares about: CR, LF, NUL, quotes, backslashes, signs,
//! digits), sends each to a fresh connection of a redis-server started for the test, and checks
//! that the replies are exactly those implied by what `parse_request` makes of the same bytes:
//! one reply per non-empty command (PONG, the echoed bulk, or some non-protocol `-ERR`), then the
//! same `-ERR Protocol error: ...` line, or nothing, where parsing stops.
//!
//! Skipped (with a note on stderr) when no `redis-server` is on the PATH. The reference is
//! redis-server 7.0; the table of individual cases lives in `src/request/tests.rs`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cachette_resp::{parse_request, Args, Limits, Status};

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<(Server, u16)> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Sends `input`, half-closes, and reads until redis-server closes. Redis handles the bytes
/// (and writes its replies) before it notices the end of input, so the replies are complete.
fn exchange(port: u16, input: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis-server");
    conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    conn.write_all(input).expect("send");
    conn.shutdown(Shutdown::Write).expect("half-close");
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    out
}

/// xorshift64*: deterministic, so a failure names its case number and reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn command(rng: &mut Rng) -> Vec<u8> {
    const WORDS: &[&[u8]] = &[
        b"a",
        b"hi",
        b"\"x y\"",
        b"'q'",
        b"\"a\\x41\"",
        b"\"\\n\"",
        b"''",
        b"\"\"",
        b"b\"c\"",
        b"\"c\"d",
        b"'e\\'f'",
        b"\xff",
        b"\x0b",
        b"\"\\\"\"",
    ];
    match rng.below(10) {
        0..=3 => {
            let arg: Vec<u8> = (0..rng.below(6)).map(|_| rng.next() as u8).collect();
            match rng.below(4) {
                0 => multibulk(&[b"PING"]),
                1 => multibulk(&[b"ECHO", &arg]),
                2 => multibulk(&[b"PING", &arg]),
                _ => multibulk(&[b"ECHO"]),
            }
        }
        4..=8 => {
            let mut line = rng.pick(&[&b"PING"[..], b"ECHO", b"ping", b"echo"]).to_vec();
            for _ in 0..rng.below(3) {
                line.extend_from_slice(rng.pick(&[&b" "[..], b"\t", b"  ", b" \x0b"]));
                line.extend_from_slice(rng.pick(WORDS));
            }
            line.extend_from_slice(rng.pick(&[&b"\r\n"[..], b"\n", b"\r\r\n"]));
            line
        }
        _ => rng.pick(&[&b"\r\n"[..], b"\n", b"*0\r\n", b"*-1\r\n", b"*-3\r\n"]).to_vec(),
    }
}

fn mutate(rng: &mut Rng, mut input: Vec<u8>) -> Vec<u8> {
    const BYTES: &[u8] = b"\r\n\0*$-019\"'\\ x+\xff";
    for _ in 0..rng.below(3) {
        let at = rng.below(input.len() + 1);
        let byte = rng.pick(BYTES);
        match rng.below(3) {
            0 => input.insert(at, byte),
            1 if !input.is_empty() => {
                input.remove(at.min(input.len() - 1));
            }
            _ if !input.is_empty() => {
                let last = input.len() - 1;
                input[at.min(last)] = byte;
            }
            _ => {}
        }
    }
    input
}

/// The replies redis-server must send if it parses `input` as `parse_request` does. `None` in
/// the list stands for "some error that is not a protocol error" (unknown command, arity).
fn expected(input: &[u8]) -> Vec<Option<Vec<u8>>> {
    let limits = Limits::default();
    let mut args = Args::new();
    let mut replies = Vec::new();
    let mut pos = 0;
    loop {
        let buf = &input[pos..];
        match parse_request(buf, &limits, &mut args) {
            Ok(Status::Complete(n)) => {
                let argv: Vec<&[u8]> = args.iter(buf).collect();
                if let Some(name) = argv.first() {
                    let name = name.to_ascii_lowercase();
                    replies.push(match (&name[..], argv.len()) {
                        (b"ping", 1) => Some(b"+PONG\r\n".to_vec()),
                        (b"ping" | b"echo", 2) => {
                            let mut r = format!("${}\r\n", argv[1].len()).into_bytes();
                            r.extend_from_slice(argv[1]);
                            r.extend_from_slice(b"\r\n");
                            Some(r)
                        }
                        _ => None,
                    });
                }
                pos += n;
            }
            Ok(Status::Incomplete) => return replies,
            Err(e) => {
                let mut r = b"-ERR ".to_vec();
                r.extend_from_slice(e.as_bytes());
                r.extend_from_slice(b"\r\n");
                replies.push(Some(r));
                return replies;
            }
        }
    }
}

/// Splits a reply stream of simple strings, errors and bulk strings into frames.
fn split_replies(mut out: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some(cr) = out.windows(2).position(|w| w == b"\r\n") {
        let mut end = cr + 2;
        if out[0] == b'$' {
            let len: usize = std::str::from_utf8(&out[1..cr]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            end = (end + len + 2).min(out.len());
        }
        frames.push(out[..end].to_vec());
        out = &out[end..];
    }
    frames
}

#[test]
fn parser_agrees_with_redis_server() {
    let Some((_server, port)) = start_redis() else {
        eprintln!("differential: no redis-server on PATH, skipped");
        return;
    };
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for case in 0..1500 {
        let mut input: Vec<u8> = (0..1 + rng.below(3)).flat_map(|_| command(&mut rng)).collect();
        if rng.below(5) < 4 {
            input = mutate(&mut rng, input);
        }
        if rng.below(5) == 0 {
            input.truncate(rng.below(input.len() + 1));
        }
        let want = expected(&input);
        let got = split_replies(&exchange(port, &input));
        let agree = want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| match w {
                Some(w) => w == g,
                None => g.starts_with(b"-ERR ") && !g.starts_with(b"-ERR Protocol error"),
            });
        assert!(
            agree,
            "case {case}: {:?}\n  parse_request implies {:?}\n  redis-server sent {:?}",
            String::from_utf8_lossy(&input),
            want.iter().map(|w| w.as_deref().map(String::from_utf8_lossy)).collect::<Vec<_>>(),
            got.iter().map(|g| String::from_utf8_lossy(g)).collect::<Vec<_>>(),
        );
    }
}
