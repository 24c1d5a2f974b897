//! The Prometheus endpoint end to end: /metrics shows the server's counters under cachette's,
//! redis_exporter's and memcached_exporter's names, /health answers, and bad requests get HTTP
//! errors without disturbing the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util;

/// Sends raw bytes, returns (status line, body).
fn http(port: u16, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics listener");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

pub(crate) fn get(port: u16, path: &str) -> (String, String) {
    http(port, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
}

/// The value of the sample line starting with `series` (name and labels exactly).
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in:\n{body}"))
}

pub(crate) fn start(extra: &[&str]) -> (util::Proc, u16) {
    for _ in 0..5 {
        let port = util::free_port();
        let mut args = vec!["--metrics-port".to_string(), port.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = util::cachette(&refs);
        if util::connect_when_ready(port, Duration::from_secs(5)).is_some() {
            return (server, port);
        }
    }
    panic!("metrics endpoint did not come up");
}

#[test]
fn metrics_show_the_servers_counters_under_all_three_families() {
    let (server, port) = start(&[]);
    let mut c = server.redis_client();
    for i in 0..3 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut c).unwrap();
    }
    let _: () = redis::cmd("SET").arg("t").arg("v").arg("EX").arg(100).query(&mut c).unwrap();
    let _: () = redis::cmd("SELECT").arg(2).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("other").arg("v").query(&mut c).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("other").query(&mut c).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("missing").query(&mut c).unwrap();
    let mut mc = server.mc();
    mc.write_all(b"get k0\r\nget nope\r\n").unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"END\r\nEND\r\n") {
        let mut b = [0u8; 256];
        let n = mc.read(&mut b).unwrap();
        got.extend_from_slice(&b[..n]);
    }

    let (status, body) = get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&body, "cachette_up"), 1.0);
    assert_eq!(sample(&body, "cachette_db_keys{db=\"0\"}"), 4.0);
    assert_eq!(sample(&body, "cachette_db_keys_expiring{db=\"0\"}"), 1.0);
    assert_eq!(sample(&body, "cachette_db_keys{db=\"2\"}"), 1.0);
    assert!(sample(&body, "cachette_commands_processed_total") >= 9.0);
    assert_eq!(sample(&body, "cachette_connections{protocol=\"memcached\"}"), 1.0);
    assert!(sample(&body, "cachette_memory_used_bytes") > 0.0);
    assert_eq!(sample(&body, "redis_db_keys{db=\"db0\"}"), 4.0);
    assert_eq!(sample(&body, "redis_db_keys_expiring{db=\"db0\"}"), 1.0);
    assert_eq!(sample(&body, "redis_keyspace_hits_total"), 2.0);
    assert_eq!(sample(&body, "redis_keyspace_misses_total"), 2.0);
    assert_eq!(sample(&body, "redis_connected_clients"), 1.0);
    assert_eq!(sample(&body, "redis_commands_total{cmd=\"set\"}"), 5.0);
    assert_eq!(sample(&body, "cachette_commands_total{protocol=\"resp\",cmd=\"get\"}"), 2.0);
    assert!(sample(&body, "redis_commands_duration_seconds_total{cmd=\"set\"}") > 0.0);
    assert_eq!(sample(&body, "cachette_commands_total{protocol=\"memcached\",cmd=\"get\"}"), 2.0);
    assert_eq!(sample(&body, "cachette_last_bgsave_ok"), 1.0);
    assert!(body.contains("# TYPE cachette_command_duration_seconds histogram"), "{body}");
    let set = "protocol=\"resp\",cmd=\"set\"";
    assert_eq!(sample(&body, &format!("cachette_command_duration_seconds_count{{{set}}}")), 5.0);
    assert_eq!(sample(&body, &format!("cachette_command_duration_seconds_bucket{{{set},le=\"+Inf\"}}")), 5.0);
    assert!(sample(&body, &format!("cachette_command_duration_seconds_bucket{{{set},le=\"1\"}}")) == 5.0);
    assert_eq!(sample(&body, "cachette_aof_size_bytes"), 0.0);
    assert_eq!(sample(&body, "cachette_loading"), 0.0);
    assert_eq!(sample(&body, "redis_rdb_bgsave_in_progress"), 0.0);
    assert_eq!(sample(&body, "memcached_current_items"), 4.0);
    assert_eq!(sample(&body, "memcached_commands_total{command=\"get\",status=\"hit\"}"), 1.0);
    assert_eq!(sample(&body, "memcached_commands_total{command=\"get\",status=\"miss\"}"), 1.0);
    assert_eq!(sample(&body, "memcached_current_connections"), 1.0);
    assert!(body.contains("# TYPE redis_keyspace_hits_total counter"), "{body}");
    // Every metric the shipped Grafana dashboard plots exists.
    let dashboard = include_str!("../../conf/grafana-dashboard.json");
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if (word.starts_with("cachette_") || word.starts_with("memcached_")) && word != "memcached_exporter" {
            assert!(body.contains(&format!("\n{word}")), "dashboard uses {word}, which /metrics lacks");
        }
    }
    drop(server);
}

#[test]
fn metrics_names_selects_one_family() {
    let (_server, port) = start(&["--metrics-names", "redis"]);
    let (_, body) = get(port, "/metrics");
    assert!(body.contains("redis_up 1"), "{body}");
    assert!(!body.contains("cachette_up") && !body.contains("memcached_up"), "{body}");
}

#[test]
fn health_and_bad_requests() {
    let (server, port) = start(&[]);
    assert_eq!(get(port, "/health"), ("HTTP/1.1 200 OK".to_string(), "OK\n".to_string()));
    assert_eq!(get(port, "/nope").0, "HTTP/1.1 404 Not Found");
    assert_eq!(http(port, b"POST /metrics HTTP/1.1\r\n\r\n").0, "HTTP/1.1 405 Method Not Allowed");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(http(port, huge.as_bytes()).0, "HTTP/1.1 431 Request Header Fields Too Large");
    // A client that connects and says nothing holds the listener for its read timeout at most.
    let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(get(port, "/health").0, "HTTP/1.1 200 OK");
    let mut c = server.redis_client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}
