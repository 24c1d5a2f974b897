//! A real Prometheus scrapes cachette: Debian's `prometheus` is pointed at the metrics endpoint
//! with a 1-second interval, and its HTTP API must return the values cachette exposed (keys
//! written, under cachette's and redis_exporter's names).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The first value of an instant-vector query result, from Prometheus's JSON.
fn query(port: u16, expr: &str) -> Option<f64> {
    let body = http_get(port, &format!("/api/v1/query?query={expr}"))?;
    // ..."value":[1700000000.123,"4"]...
    let v = body.split("\"value\":[").nth(1)?;
    let v = v.split(",\"").nth(1)?;
    v.split('"').next()?.parse().ok()
}

#[test]
fn prometheus_scrapes_what_cachette_exposes() {
    let Some(prom) = util::find_binary("prometheus") else {
        assert!(!util::in_ci(), "prometheus missing under CI");
        eprintln!("prometheus not installed: skipped");
        return;
    };
    let metrics_port = util::free_port();
    let server = util::cachette(&["--metrics-port", &metrics_port.to_string()]);
    let mut c = server.redis_client();
    for i in 0..7 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut c).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("cachette-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cachette\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let prom_port = util::free_port();
    let _prom = Killed(
        Command::new(prom)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut keys = None;
    while Instant::now() < deadline {
        keys = query(prom_port, "cachette_db_keys%7Bdb%3D%220%22%7D");
        if keys.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(keys, Some(7.0), "cachette_db_keys{{db=\"0\"}} as Prometheus scraped it");
    assert_eq!(query(prom_port, "redis_db_keys%7Bdb%3D%22db0%22%7D"), Some(7.0));
    assert_eq!(query(prom_port, "up%7Bjob%3D%22cachette%22%7D"), Some(1.0), "the scrape succeeded");
    assert!(query(prom_port, "redis_commands_processed_total").is_some_and(|n| n >= 7.0));
    let _ = std::fs::remove_dir_all(&dir);
}
