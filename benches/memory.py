#!/usr/bin/env python3
"""Memory side by side: cachette vs redis-server vs memcached, in one run (issue 6).

Sub-commands, each printing a table (or, with --json, one JSON object) on stdout:

  perkey    bytes per key above the empty server for N keys `key:%08d` with 32- and 100-byte
            values: cachette (loaded over RESP and over the memcached port) vs redis-server
            (RSS and INFO used_memory growth) vs memcached (RSS and stats `bytes` growth).
  limit     every maxmemory-policy under a sustained random write load over a keyspace holding
            2x the limit in key+value bytes: max RSS against limit + empty RSS, OOM replies,
            evicted_keys, for cachette and redis-server.
  hitratio  allkeys-lru at the same limit, cache-aside over a Zipf(0.99) keyspace: hit ratios.
  cost      redis-benchmark SET/GET throughput with no limit vs a limit at half of what the
            keyspace needs (evicting all the time), for cachette and, for reference, redis-server.
  all       the four in turn.

Usage: benches/memory.py [--quick] [--json] [--cachette PATH] [options] SUB-COMMAND
QUICK=1 in the environment is --quick. Progress goes to stderr. Servers listen on free
127.0.0.1 ports, pinned to core 0 and the load generators to core 1 when taskset exists and
there are two cores; every process started here is killed at exit, also on Ctrl-C.
"""
import argparse, atexit, bisect, csv, io, itertools, json, os, random, shutil, signal
import socket, statistics, subprocess, sys, time

KEY_LEN = 12  # len(b"key:%08d" % n) for n < 10**8
POLICIES = ["noeviction", "allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-lfu",
            "allkeys-random", "volatile-random", "volatile-ttl"]
PROCS = []  # every child process, killed at exit
SOCK_TIMEOUT = 30.0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def rss(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pinning():
    """(server prefix, client prefix): taskset only with it installed and two cores usable."""
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2 and {0, 1} <= os.sched_getaffinity(0):
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


SERVER_PIN, CLIENT_PIN = pinning()


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                p.kill(); p.wait(timeout=5)
            except Exception:
                pass
    PROCS.clear()


def stop(p):
    if p in PROCS:
        PROCS.remove(p)
    if p.poll() is None:
        p.kill()
        p.wait(timeout=10)


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    PROCS.append(p)
    return p


def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """A RESP2 connection that parses just what these loads receive."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=SOCK_TIMEOUT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""; self.pos = 0

    def close(self):
        self.s.close()

    def _fill(self):
        data = self.s.recv(1 << 20)
        if not data:
            raise RuntimeError("server closed the connection")
        self.buf = self.buf[self.pos:] + data; self.pos = 0

    def reply(self):
        """One reply: bytes for + and $ (None for a nil bulk), int for :, ("ERR", text) for -,
        a list for *."""
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end < 0:
                self._fill(); continue
            t, line = self.buf[self.pos:self.pos + 1], self.buf[self.pos + 1:end]
            if t == b"$":
                n = int(line)
                if n < 0:
                    self.pos = end + 2; return None
                while len(self.buf) < end + 2 + n + 2:
                    self._fill(); end = self.buf.find(b"\r\n", self.pos)
                v = self.buf[end + 2:end + 2 + n]; self.pos = end + 4 + n; return v
            self.pos = end + 2
            if t == b"+":
                return line
            if t == b"-":
                return ("ERR", line.decode(errors="replace"))
            if t == b":":
                return int(line)
            if t == b"*":
                return [self.reply() for _ in range(max(int(line), 0))]
            raise RuntimeError(f"unexpected reply line {t + line!r}")

    def call(self, *args):
        self.s.sendall(cmd(*args))
        return self.reply()

    def lines(self, frames, n):
        """Send frames answering one line each (+OK / -ERR); return the number of error lines."""
        self.s.sendall(frames)
        errors = 0
        while n > 0:
            end = self.buf.rfind(b"\r\n")
            if end < self.pos:
                self._fill(); continue
            chunk = self.buf[self.pos:end + 2]; self.pos = end + 2
            got = chunk.count(b"\r\n")
            errors += chunk.count(b"\r\n-") + chunk.startswith(b"-")
            n -= got
        if n < 0:
            raise RuntimeError("more replies than requests")
        return errors

    def info(self, section):
        r = self.call("INFO", section)
        out = {}
        for line in r.decode(errors="replace").split("\r\n"):
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1); out[k] = v
        return out

    def info_int(self, section, field):
        return int(self.info(section).get(field, "0").split(".")[0] or 0)


class Mc:
    """A memcached text-protocol connection (stats and counted `set`s)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=SOCK_TIMEOUT); self.buf = b""

    def close(self):
        self.s.close()

    def sets(self, frames, n):
        self.s.sendall(frames)
        while n > 0:
            data = self.s.recv(1 << 20)
            if not data:
                raise RuntimeError("memcached closed the connection")
            self.buf += data
            end = self.buf.rfind(b"\r\n")
            if end < 0:
                continue
            chunk, self.buf = self.buf[:end + 2], self.buf[end + 2:]
            if chunk.count(b"STORED\r\n") != chunk.count(b"\r\n"):
                raise RuntimeError(f"set failed: {chunk[:200]!r}")
            n -= chunk.count(b"\r\n")

    def stats(self):
        self.s.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            d = self.s.recv(1 << 16)
            if not d:
                raise RuntimeError("memcached closed the connection")
            data += d
        out = {}
        for line in data.decode().split("\r\n"):
            parts = line.split(" ")
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = parts[2]
        return out


def wait_ready(p, port, what, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{what} exited with status {p.returncode} at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer on port {port} within {timeout:.0f} s")


class Server:
    """One fresh server: kind is cachette, redis or memcached."""

    def __init__(self, kind, binary=None, maxmemory=0, policy=None, mc_port=False):
        self.kind = kind; self.port = free_port(); self.mport = None
        if kind == "redis":
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"]
            if maxmemory:
                argv += ["--maxmemory", str(maxmemory)]
            if policy:
                argv += ["--maxmemory-policy", policy]
        elif kind == "cachette":
            self.mport = free_port() if mc_port else 0
            argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--memcache-port",
                    str(self.mport), "--threads", "1", "--save", "", "--metrics-port", "0"]
            if maxmemory:
                argv += ["--maxmemory", str(maxmemory)]
            if policy:
                argv += ["--maxmemory-policy", policy]
        else:
            self.mport = self.port
            argv = ["memcached", "-p", str(self.port), "-l", "127.0.0.1", "-U", "0", "-t", "1", "-m", "4096"]
            if os.geteuid() == 0:
                argv += ["-u", "root"]  # memcached refuses to run as root without it
        self.p = spawn(SERVER_PIN + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.p, self.port, kind)
        if self.mport:
            wait_ready(self.p, self.mport, kind + " (memcached port)")
        time.sleep(0.2)  # let the server finish starting before the empty-server RSS is read
        self.pid = self.p.pid  # taskset execs the server, so this is the server's own pid

    def rss(self):
        return rss(self.pid)

    def stop(self):
        stop(self.p)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def value(size):
    # Not a number (no integer encoding); the same bytes for every key.
    return (b"v" * size)[:size]


# ---------------------------------------------------------------------------------------- perkey

def load_resp(c, n, size, batch=1000):
    tmpl = b"*3\r\n$3\r\nSET\r\n$%d\r\n%%s\r\n$%d\r\n%s\r\n" % (KEY_LEN, size, value(size))
    for start in range(0, n, batch):
        end = min(n, start + batch)
        frames = b"".join([tmpl % (b"key:%08d" % i) for i in range(start, end)])
        if c.lines(frames, end - start):
            raise RuntimeError("SET answered an error while loading")


def load_mc(c, n, size, batch=1000):
    tmpl = b"set %%s 0 0 %d\r\n%s\r\n" % (size, value(size))
    for start in range(0, n, batch):
        end = min(n, start + batch)
        c.sets(b"".join([tmpl % (b"key:%08d" % i) for i in range(start, end)]), end - start)


def perkey(a):
    rows = []
    for size in (32, 100):
        for label, kind, proto in (("cachette", "cachette", "resp"), ("cachette-mc", "cachette", "mc"),
                                   ("redis", "redis", "resp"), ("memcached", "memcached", "mc")):
            if kind == "cachette" and not a.cachette_ok:
                continue
            log(f"perkey: {label}, {a.keys} keys, {size}-byte values")
            with Server(kind, a.cachette, mc_port=(proto == "mc")) as s:
                r = Resp(s.port) if kind != "memcached" else None
                m = Mc(s.mport) if proto == "mc" else None
                acct = lambda: r.info_int("memory", "used_memory") if r else int(m.stats()["bytes"])
                r0, u0 = s.rss(), acct()
                t0 = time.time()
                (load_mc(m, a.keys, size) if proto == "mc" else load_resp(r, a.keys, size))
                secs = time.time() - t0
                time.sleep(0.5)
                r1, u1 = s.rss(), acct()
                nkeys = r.info("keyspace").get("db0", "keys=0").split(",")[0].split("=")[1] if r else \
                    m.stats().get("curr_items")
                if int(nkeys) != a.keys:
                    raise RuntimeError(f"{label}: {nkeys} keys after loading {a.keys}")
                rows.append({
                    "value_size": size, "server": label, "keys": a.keys, "load_seconds": round(secs, 2),
                    "rss_empty": r0, "rss_loaded": r1,
                    "rss_per_key": (r1 - r0) / a.keys, "overhead_per_key": (r1 - r0) / a.keys - KEY_LEN - size,
                    "account": "stats bytes" if kind == "memcached" else "used_memory",
                    "account_per_key": (u1 - u0) / a.keys,
                })
                for c in (r, m):
                    if c:
                        c.close()
    by = {(x["value_size"], x["server"]): x for x in rows}
    ratios = []
    for size in (32, 100):
        c, cm = by.get((size, "cachette")), by.get((size, "cachette-mc"))
        rd, mc = by.get((size, "redis")), by.get((size, "memcached"))
        ratios.append({
            "value_size": size,
            "cachette_vs_redis": c and rd and c["rss_per_key"] / rd["rss_per_key"],
            "cachette_vs_memcached": c and mc and c["rss_per_key"] / mc["rss_per_key"],
            "cachette_mc_vs_memcached": cm and mc and cm["rss_per_key"] / mc["rss_per_key"],
        })
    out = {"keys": a.keys, "key_bytes": KEY_LEN, "rows": rows, "ratios": ratios}
    if not a.json:
        print(f"\n== perkey: bytes per key above the empty server, {a.keys} keys `key:%08d` "
              f"(target: cachette <= 0.75x redis, <= 0.9x memcached, overhead <= 40 B) ==")
        print(f"{'value':>5}  {'server':12} {'RSS B/key':>10} {'overhead':>9} {'account B/key':>14}  account")
        for x in rows:
            print(f"{x['value_size']:5}  {x['server']:12} {x['rss_per_key']:10.1f} {x['overhead_per_key']:9.1f} "
                  f"{x['account_per_key']:14.1f}  {x['account']}")
        f = lambda v: f"{v:.2f}x" if v else "-"
        print(f"\n{'value':>5}  {'cachette/redis':>15} {'cachette/memcached':>19} {'cachette-mc/memcached':>22}")
        for x in ratios:
            print(f"{x['value_size']:5}  {f(x['cachette_vs_redis']):>15} {f(x['cachette_vs_memcached']):>19} "
                  f"{f(x['cachette_mc_vs_memcached']):>22}")
    return out


# ----------------------------------------------------------------------------------------- limit

def writer(a):
    """Child process: random pipelined SET key EX 100000 for --duration s; prints a JSON line."""
    rnd = random.Random(a.seed)
    c = Resp(a.port)
    tmpl = b"*5\r\n$3\r\nSET\r\n$%d\r\n%%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$6\r\n100000\r\n" % (
        KEY_LEN, a.value_size, value(a.value_size))
    n, batch = a.keyspace, a.batch
    sent = errors = 0
    err_sample = None
    deadline = time.time() + a.duration
    while time.time() < deadline:
        frames = b"".join([tmpl % (b"key:%08d" % rnd.randrange(n)) for _ in range(batch)])
        e = c.lines(frames, batch)
        if e and err_sample is None:
            err_sample = c.call("SET", "key:probe", value(a.value_size), "EX", "100000")
        sent += batch; errors += e
    print(json.dumps({"sent": sent, "errors": errors, "seconds": a.duration,
                      "error_sample": err_sample[1] if isinstance(err_sample, tuple) else None}))


def limit(a):
    keyspace = 2 * a.limit // (KEY_LEN + 100)
    rows = []
    for policy in a.policies:
        for kind in ("cachette", "redis"):
            if kind == "cachette" and not a.cachette_ok:
                continue
            log(f"limit: {kind} {policy}, maxmemory {a.limit}, keyspace {keyspace}, {a.duration} s")
            with Server(kind, a.cachette, maxmemory=a.limit, policy=policy) as s:
                c = Resp(s.port)
                got = c.call("CONFIG", "GET", "maxmemory-policy")
                if not (isinstance(got, list) and len(got) == 2 and got[1].decode() == policy):
                    raise RuntimeError(f"{kind}: CONFIG GET maxmemory-policy says {got!r}")
                r0 = s.rss()
                w = spawn(CLIENT_PIN + [sys.executable, os.path.abspath(__file__), "_writer", "--port", str(s.port),
                                        "--keyspace", str(keyspace), "--duration", str(a.duration),
                                        "--seed", str(a.seed)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                max_rss = r0; max_used = 0; samples = 0
                deadline = time.time() + a.duration + 30
                while w.poll() is None and time.time() < deadline:
                    max_rss = max(max_rss, s.rss())
                    max_used = max(max_used, c.info_int("memory", "used_memory")); samples += 1
                    time.sleep(0.5)
                if w.poll() is None:
                    stop(w); raise RuntimeError(f"writer against {kind} did not finish")
                out, err = w.communicate(timeout=10)
                PROCS.remove(w)
                if w.returncode != 0:
                    raise RuntimeError(f"writer against {kind} failed: {err.decode()[-500:]}")
                res = json.loads(out.decode().strip().splitlines()[-1])
                max_rss = max(max_rss, s.rss())
                evicted = c.info_int("stats", "evicted_keys")
                keys = c.info("keyspace").get("db0", "keys=0").split(",")[0].split("=")[1]
                rows.append({
                    "policy": policy, "server": kind, "maxmemory": a.limit, "keyspace": keyspace,
                    "seconds": a.duration, "rss_empty": r0, "rss_max": max_rss,
                    "rss_max_ratio": max_rss / (a.limit + r0), "used_memory_max": max_used,
                    "used_memory_max_ratio": max_used / a.limit, "rss_samples": samples,
                    "writes": res["sent"], "writes_per_sec": res["sent"] / a.duration,
                    "errors": res["errors"], "error_sample": res["error_sample"],
                    "evicted_keys": evicted, "keys_at_end": int(keys),
                })
                c.close()
    out = {"maxmemory": a.limit, "keyspace": keyspace, "rows": rows}
    if not a.json:
        print(f"\n== limit: maxmemory {a.limit} B ({a.limit / 2**20:.0f} MiB), random SET key EX 100000 "
              f"(100-byte values) over {keyspace} keys for {a.duration} s (target: RSS max / (limit + empty) <= 1.10) ==")
        print(f"{'policy':16} {'server':9} {'RSS max MiB':>11} {'/(L+empty)':>10} {'used/L':>7} {'writes/s':>9} "
              f"{'errors':>9} {'evicted':>9} {'keys':>8}")
        for x in rows:
            print(f"{x['policy']:16} {x['server']:9} {x['rss_max'] / 2**20:11.1f} {x['rss_max_ratio']:10.3f} "
                  f"{x['used_memory_max_ratio']:7.3f} {x['writes_per_sec']:9.0f} {x['errors']:9} "
                  f"{x['evicted_keys']:9} {x['keys_at_end']:8}")
        samples = {x["error_sample"] for x in rows if x["error_sample"]}
        for e in sorted(samples):
            print(f"  error reply seen: -{e}")
    return out


# -------------------------------------------------------------------------------------- hitratio

class Zipf:
    def __init__(self, n, s, seed):
        acc = list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))
        self.cdf, self.total, self.rnd = acc, acc[-1], random.Random(seed)

    def draw(self, k):
        cdf, total, r, bl = self.cdf, self.total, self.rnd.random, bisect.bisect_left
        n = len(cdf) - 1
        return [min(bl(cdf, r() * total), n) for _ in range(k)]


def cache_aside(c, zipf, ops, size, batch=100):
    """GET a batch of Zipf-drawn keys (pipelined), then SET the ones that missed."""
    get = b"*2\r\n$3\r\nGET\r\n$%d\r\n%%s\r\n" % KEY_LEN
    setf = b"*3\r\n$3\r\nSET\r\n$%d\r\n%%s\r\n$%d\r\n%s\r\n" % (KEY_LEN, size, value(size))
    hits = misses = errors = 0
    done = 0
    while done < ops:
        k = min(batch, ops - done)
        keys = [b"key:%08d" % i for i in zipf.draw(k)]
        c.s.sendall(b"".join([get % key for key in keys]))
        missed = {}
        for key in keys:
            v = c.reply()
            if v is None:
                misses += 1; missed[key] = 1
            elif isinstance(v, tuple):
                raise RuntimeError(f"GET answered {v[1]}")
            else:
                hits += 1
        if missed:
            errors += c.lines(b"".join([setf % key for key in missed]), len(missed))
        done += k
    return hits, misses, errors


def hitratio(a):
    keyspace = a.hr_keyspace or 2 * a.limit // 176  # ~176 B/key for redis-server: ~2x what fits
    rows = []
    for kind in ("cachette", "redis"):
        if kind == "cachette" and not a.cachette_ok:
            continue
        log(f"hitratio: {kind}, allkeys-lru, maxmemory {a.limit}, Zipf(0.99) over {keyspace} keys, "
            f"warm-up {a.warmup}, measure {a.measure}")
        zipf = Zipf(keyspace, 0.99, a.seed)
        with Server(kind, a.cachette, maxmemory=a.limit, policy="allkeys-lru") as s:
            c = Resp(s.port)
            samples = c.call("CONFIG", "GET", "maxmemory-samples")
            t0 = time.time()
            # Fill first, least popular key first, so the cache starts full with the hottest keys
            # most recent; a cache-aside warm-up alone takes millions of ops to reach the Zipf tail.
            tmpl = b"*3\r\n$3\r\nSET\r\n$%d\r\n%%s\r\n$100\r\n%s\r\n" % (KEY_LEN, value(100))
            for hi in range(keyspace, 0, -1000):
                ids = range(hi - 1, max(hi - 1000, 0) - 1, -1)
                c.lines(b"".join([tmpl % (b"key:%08d" % i) for i in ids]), len(ids))
            cache_aside(c, zipf, a.warmup, 100)
            ev0 = c.info_int("stats", "evicted_keys")
            t1 = time.time()
            hits, misses, errors = cache_aside(c, zipf, a.measure, 100)
            t2 = time.time()
            rows.append({
                "server": kind, "maxmemory": a.limit, "keyspace": keyspace, "warmup": a.warmup,
                "ops": a.measure, "hits": hits, "misses": misses, "set_errors": errors,
                "hit_ratio": hits / max(hits + misses, 1),
                "evicted_after_warmup": ev0, "evicted_keys": c.info_int("stats", "evicted_keys"),
                "keys_at_end": int(c.info("keyspace").get("db0", "keys=0").split(",")[0].split("=")[1]),
                "maxmemory_samples": samples[1].decode() if isinstance(samples, list) and len(samples) == 2 else None,
                "seconds": round(t2 - t0, 1), "ops_per_sec": a.measure / max(t2 - t1, 1e-9),
            })
            c.close()
    by = {x["server"]: x for x in rows}
    diff = (by["cachette"]["hit_ratio"] - by["redis"]["hit_ratio"]) * 100 if len(by) == 2 else None
    out = {"rows": rows, "diff_pp": diff}
    if not a.json:
        print(f"\n== hitratio: allkeys-lru, maxmemory {a.limit} B, cache-aside GET / SET-on-miss, Zipf(0.99) over "
              f"{keyspace} keys, 100-byte values, fill + {a.warmup} warm-up + {a.measure} measured ops "
              f"(target: within 2 pp of redis) ==")
        print(f"{'server':9} {'hit ratio':>9} {'hits':>9} {'misses':>9} {'evicted':>9} {'keys':>8} {'samples':>7} {'ops/s':>8}")
        for x in rows:
            print(f"{x['server']:9} {x['hit_ratio'] * 100:8.2f}% {x['hits']:9} {x['misses']:9} {x['evicted_keys']:9} "
                  f"{x['keys_at_end']:8} {x['maxmemory_samples'] or '-':>7} {x['ops_per_sec']:8.0f}")
        if diff is not None:
            print(f"cachette - redis: {diff:+.2f} percentage points")
        if any(x["evicted_after_warmup"] == 0 for x in rows):
            print("WARNING: a server had evicted nothing after the warm-up: the limit was not reached")
    return out


# ------------------------------------------------------------------------------------------ cost

def redis_benchmark(port, a):
    argv = CLIENT_PIN + ["redis-benchmark", "-p", str(port), "-t", "set,get", "-r", str(a.cost_keys), "-d", "100",
                         "-c", "50", "-P", "16", "-n", str(a.cost_requests), "--csv"]
    r = subprocess.run(["timeout", "300"] + argv, capture_output=True, timeout=320)
    if r.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed ({r.returncode}): {r.stderr.decode()[-300:]}")
    out = {}
    for row in csv.reader(io.StringIO(r.stdout.decode())):
        if len(row) >= 2 and row[0] in ("SET", "GET"):
            out[row[0].lower()] = float(row[1])
    if set(out) != {"set", "get"}:
        raise RuntimeError(f"redis-benchmark output not understood: {r.stdout.decode()[:300]!r}")
    return out


def cost(a):
    rows, summary = [], []
    for kind in ("cachette", "redis"):
        if kind == "cachette" and not a.cachette_ok:
            continue
        lim = None
        runs = {"unlimited": [], "limited": []}
        for rep in range(a.repeats):
            for mode in ("unlimited", "limited"):
                maxmem = 0 if mode == "unlimited" else lim
                log(f"cost: {kind} {mode} (maxmemory {maxmem}), repeat {rep + 1}/{a.repeats}")
                with Server(kind, a.cachette, maxmemory=maxmem, policy="allkeys-lru" if maxmem else None) as s:
                    c = Resp(s.port)
                    u0 = c.info_int("memory", "used_memory")
                    res = redis_benchmark(s.port, a)
                    u1 = c.info_int("memory", "used_memory")
                    if lim is None:
                        lim = u0 + (u1 - u0) // 2  # half of what the keyspace needed above empty
                    ev = c.info_int("stats", "evicted_keys")
                    row = {"server": kind, "mode": mode, "repeat": rep + 1, "maxmemory": maxmem,
                           "set_rps": res["set"], "get_rps": res["get"], "used_memory_end": u1, "evicted_keys": ev}
                    rows.append(row); runs[mode].append(row)
                    c.close()
        med = {m: {op: statistics.median(r[f"{op}_rps"] for r in runs[m]) for op in ("set", "get")} for m in runs}
        summary.append({"server": kind, "maxmemory_limited": lim,
                        "unlimited_set": med["unlimited"]["set"], "limited_set": med["limited"]["set"],
                        "unlimited_get": med["unlimited"]["get"], "limited_get": med["limited"]["get"],
                        "set_ratio": med["limited"]["set"] / med["unlimited"]["set"],
                        "get_ratio": med["limited"]["get"] / med["unlimited"]["get"],
                        "evicted_keys_limited": statistics.median(r["evicted_keys"] for r in runs["limited"])})
    out = {"requests": a.cost_requests, "keyspace": a.cost_keys, "repeats": a.repeats, "rows": rows, "summary": summary}
    if not a.json:
        print(f"\n== cost: redis-benchmark -t set,get -r {a.cost_keys} -d 100 -c 50 -P 16 -n {a.cost_requests}, "
              f"median of {a.repeats}, maxmemory 0 vs allkeys-lru at half the keyspace's need "
              f"(target: cachette limited >= 0.95x unlimited) ==")
        print(f"{'server':9} {'limit MiB':>9} {'SET k/s':>8} {'limited':>8} {'ratio':>6} {'GET k/s':>8} {'limited':>8} "
              f"{'ratio':>6} {'evicted':>9}")
        for x in summary:
            print(f"{x['server']:9} {x['maxmemory_limited'] / 2**20:9.1f} {x['unlimited_set'] / 1e3:8.0f} "
                  f"{x['limited_set'] / 1e3:8.0f} {x['set_ratio']:5.2f}x {x['unlimited_get'] / 1e3:8.0f} "
                  f"{x['limited_get'] / 1e3:8.0f} {x['get_ratio']:5.2f}x {x['evicted_keys_limited']:9.0f}")
    return out


# ------------------------------------------------------------------------------------------ main

def size_arg(v):
    v = v.strip().lower()
    for suf, mul in (("gb", 2**30), ("mb", 2**20), ("kb", 2**10), ("g", 10**9), ("m", 10**6), ("k", 10**3)):
        if v.endswith(suf):
            return int(float(v[:-len(suf)]) * mul)
    return int(v)


def find_cachette(given):
    if given:
        return given
    tgt = os.environ.get("CARGO_TARGET_DIR")
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "cachette")
    for c in ([os.path.join(tgt, "release", "cachette")] if tgt else []) + [here]:
        if os.path.exists(c):
            return c
    return None


def versions(a):
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, timeout=10).stdout.decode().strip().splitlines()[0]
        except Exception as e:
            return f"? ({e})"
    rev = out(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"])
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "pinning": "servers core 0, clients core 1" if SERVER_PIN else "none (no taskset or fewer than 2 cores)",
            "cachette": f"{a.cachette} (git {rev})" if a.cachette_ok else f"SKIPPED — {a.cachette_why}",
            "redis-server": out(["redis-server", "--version"]),
            "memcached": out(["memcached", "--version"]), "quick": a.quick}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_writer":
        ap = argparse.ArgumentParser()
        for f in ("--port", "--keyspace", "--duration", "--seed"):
            ap.add_argument(f, type=int, required=True)
        ap.add_argument("--value-size", type=int, default=100)
        ap.add_argument("--batch", type=int, default=256)
        return writer(ap.parse_args(sys.argv[2:]))

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("command", choices=["perkey", "limit", "hitratio", "cost", "all"])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK", "0") == "1")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the tables")
    ap.add_argument("--cachette", help="cachette binary (default: $CARGO_TARGET_DIR/release or target/release)")
    ap.add_argument("--keys", type=int, help="perkey: keys loaded (default 1000000, quick 100000)")
    ap.add_argument("--limit", type=size_arg, help="limit/hitratio: maxmemory (default 64mb, quick 16mb)")
    ap.add_argument("--duration", type=int, help="limit: seconds per policy and server (default 60, quick 5)")
    ap.add_argument("--policies", help="limit: comma-separated policies (default: all 8)")
    ap.add_argument("--warmup", type=int, help="hitratio: cache-aside warm-up ops after the fill (default 1000000, quick 100000)")
    ap.add_argument("--measure", type=int, help="hitratio: measured ops (default 2000000, quick 200000)")
    ap.add_argument("--hr-keyspace", type=int, help="hitratio: keyspace (default 2 * limit / 176)")
    ap.add_argument("--cost-keys", type=int, help="cost: redis-benchmark -r (default 1000000, quick 100000)")
    ap.add_argument("--cost-requests", type=int, help="cost: redis-benchmark -n (default 2000000, quick 200000)")
    ap.add_argument("--repeats", type=int, help="cost: repeats, medians reported (default 3, quick 1)")
    ap.add_argument("--seed", type=int, default=12345)
    a = ap.parse_args()
    q = a.quick
    a.keys = a.keys or (100_000 if q else 1_000_000)
    a.limit = a.limit or (16 if q else 64) * 2**20
    a.duration = a.duration or (5 if q else 60)
    a.policies = a.policies.split(",") if a.policies else POLICIES
    for p in a.policies:
        if p not in POLICIES:
            ap.error(f"unknown policy {p}")
    a.warmup = a.warmup if a.warmup is not None else (100_000 if q else 1_000_000)
    a.measure = a.measure or (200_000 if q else 2_000_000)
    a.cost_keys = a.cost_keys or (100_000 if q else 1_000_000)
    a.cost_requests = a.cost_requests or (200_000 if q else 2_000_000)
    a.repeats = a.repeats or (1 if q else 3)

    atexit.register(kill_all)
    a.cachette = find_cachette(a.cachette)
    a.cachette_ok, a.cachette_why = False, "no binary (build it: cargo build --release, or give --cachette)"
    if a.cachette and os.access(a.cachette, os.X_OK):
        try:
            Server("cachette", a.cachette, mc_port=True).stop(); a.cachette_ok = True
        except Exception as e:
            a.cachette_why = str(e)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if CLIENT_PIN:
        os.sched_setaffinity(0, {1})  # this script is a load generator too (perkey, hitratio)

    head = versions(a)
    if not a.json:
        print("# memory: " + " | ".join(f"{k}: {v}" for k, v in head.items()))
    result = {"header": head}
    try:
        for name, fn in (("perkey", perkey), ("limit", limit), ("hitratio", hitratio), ("cost", cost)):
            if a.command in (name, "all"):
                t0 = time.time()
                result[name] = fn(a)
                log(f"{name}: {time.time() - t0:.0f} s")
                sys.stdout.flush()
    except KeyboardInterrupt:
        log("interrupted"); kill_all(); sys.exit(130)
    finally:
        kill_all()
    if a.json:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
