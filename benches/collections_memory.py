#!/usr/bin/env python3
"""Bytes per element of large collections, cachette vs redis-server, in one run.

For each of a 1,000,000-member sorted set, a 1,000,000-field hash and a 1,000,000-element list
(16-byte members, 16-byte hash values), it starts a fresh server, measures its RSS, loads the
collection with pipelined commands over a raw socket, and measures again. Reports bytes per
element from RSS growth and, for redis-server, from INFO used_memory growth too.

Usage: benches/collections_memory.py [--elements N] [--cachette PATH]
Servers listen on free 127.0.0.1 ports and are stopped at the end.
"""
import argparse, os, socket, subprocess, sys, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def rss(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port)); self.buf = b""
    def send_batch(self, frames, replies):
        self.s.sendall(b"".join(frames))
        # Each command of the loads answers one line (":n" or "+OK"); count CRLFs.
        need = replies
        while need > 0:
            data = self.s.recv(1 << 20)
            if not data: raise RuntimeError("server closed")
            need -= data.count(b"\r\n")
    def call(self, *args):
        self.s.sendall(cmd(*args)); data = b""
        while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
            data += self.s.recv(1 << 20)
        return data

def start(kind, binary):
    port = free_port()
    if kind == "redis":
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        p = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--memcache-port", "0", "--metrics-port", "0", "--save", "", "--threads", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError: time.sleep(0.05)
    return p, port

def used_memory(c):
    info = c.call("INFO", "memory").decode(errors="replace")
    for line in info.split("\r\n"):
        if line.startswith("used_memory:"): return int(line.split(":")[1])
    return 0

def load(c, kind, n):
    batch, frames = 1000, []
    for i in range(n):
        m = b"member:%09d...." % i  # 16 bytes
        if kind == "zset": frames.append(cmd("ZADD", "big", i, m))
        elif kind == "hash": frames.append(cmd("HSET", "big", m, b"value:%09d...." % i))
        else: frames.append(cmd("RPUSH", "big", m))
        if len(frames) == batch:
            c.send_batch(frames, len(frames)); frames = []
    if frames: c.send_batch(frames, len(frames))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elements", type=int, default=1_000_000)
    ap.add_argument("--cachette", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "cachette"))
    a = ap.parse_args()
    print(f"{'type':6} {'server':9} {'RSS B/elem':>11} {'used_memory B/elem':>19}")
    for kind in ("zset", "hash", "list"):
        for server in ("redis", "cachette"):
            p, port = start(server, a.cachette)
            try:
                c = Conn(port); time.sleep(0.2)
                r0, u0 = rss(p.pid), used_memory(c)
                load(c, kind, a.elements); time.sleep(0.5)
                r1, u1 = rss(p.pid), used_memory(c)
                enc = c.call("OBJECT", "ENCODING", "big").decode().split("\r\n")[1]
                print(f"{kind:6} {server:9} {(r1 - r0) / a.elements:11.1f} {(u1 - u0) / a.elements:19.1f}   ({enc})")
            finally:
                p.terminate(); p.wait()

if __name__ == "__main__":
    main()
