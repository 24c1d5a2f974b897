#!/usr/bin/env python3
"""A client that finds its primary through redis-sentinel and keeps writing across a failover.

Used by tests/it/sentinel_failover.rs. Each write is `SET w:<i> <i>` followed by
`WAIT 1 <ms>`; a write counts as acknowledged only when WAIT says at least one replica has it,
and is then printed as `ack <i> <unix ms> <primary port>` (flushed at once, so the test sees it
even if this process is killed). The port is the one sentinel named just before the write; the
pool drops its connections whenever that changes, so the write went there. Errors while the
primary is down or being replaced are printed as `err <unix ms> <kind>` and retried after a
short pause, the primary looked up through the sentinels again each time.

    sentinel_writer.py SENTINEL_PORTS(comma-separated) SECONDS
"""

import sys
import time

import redis
from redis.sentinel import Sentinel


def now_ms():
    return int(time.time() * 1000)


def main():
    ports = [int(p) for p in sys.argv[1].split(",")]
    seconds = float(sys.argv[2])
    sentinel = Sentinel([("127.0.0.1", p) for p in ports], socket_timeout=1.0)
    # One pool for the whole run, as an application holds it: redis-py's SentinelConnectionPool
    # asks the sentinels for the primary on every new connection.
    master = sentinel.master_for("mymaster", socket_timeout=2.0, retry_on_timeout=False)
    deadline = time.time() + seconds
    i = 0
    print(f"start {now_ms()}", flush=True)
    while time.time() < deadline:
        try:
            port = master.connection_pool.get_master_address()[1]
            master.set(f"w:{i}", i)
            if int(master.execute_command("WAIT", 1, 1000)) >= 1:
                print(f"ack {i} {now_ms()} {port}", flush=True)
            i += 1
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ReadOnlyError, redis.exceptions.ResponseError) as e:
            print(f"err {now_ms()} {type(e).__name__} {str(e)[:80]!r}", flush=True)
            time.sleep(0.1)
    print(f"done {i}", flush=True)


if __name__ == "__main__":
    main()
