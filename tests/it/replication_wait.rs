//! WAIT is answered when the replicas acknowledge, whatever the timing between the client's
//! worker parking it and the replication thread reading the ACKs: `WAIT 1 0` (no timeout) after
//! each of many writes, with two cachette replicas racing to acknowledge, must never hang.
//! (It did: a wait registered before its client was parked could be satisfied and dropped
//! in between, leaving the client blocked for its whole timeout, here for ever.)

use std::time::{Duration, Instant};

use crate::util::cachette;

#[test]
fn wait_without_timeout_is_answered_after_every_write() {
    let primary = cachette(&["--repl-diskless-sync-delay", "0"]);
    let master = format!("127.0.0.1 {}", primary.port);
    let _replicas = [cachette(&["--replicaof", &master]), cachette(&["--replicaof", &master])];
    let mut con = primary.redis_client();
    let start = Instant::now();
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut con).expect("info");
        if info.matches("state=online").count() == 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "replicas not online: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A hung WAIT shows as a read timeout, not as a test that never ends.
    con.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    for i in 0..500 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query(&mut con).expect("set");
        let acked: i64 =
            redis::cmd("WAIT").arg(1).arg(0).query(&mut con).unwrap_or_else(|e| panic!("WAIT after write {i}: {e}"));
        assert!(acked >= 1, "WAIT 1 0 answered {acked} after write {i}");
    }
}
