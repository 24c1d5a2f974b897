"""A scripted pylibmc session (libmemcached) in binary or ascii mode, with SASL when a user is
given; driven by tests/it/memcache_clients.rs:

    /usr/bin/python3 pylibmc_session.py PORT binary|ascii [USER PASSWORD]

Prints "ok" and exits 0 when every step gave the expected answer.
"""
import sys

import pylibmc

port, mode = sys.argv[1], sys.argv[2]
user, password = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
binary = mode == "binary"
mc = pylibmc.Client([f"127.0.0.1:{port}"], binary=binary, username=user, password=password,
                    behaviors={"cas": True})

assert mc.flush_all()
assert mc.set("py:a", "hello")
assert mc.get("py:a") == "hello"
assert mc.get("py:missing") is None
assert not mc.add("py:a", "x")
assert mc.add("py:b", b"\x00\xffbinary")
assert mc.get("py:b") == b"\x00\xffbinary"
# libmemcached reports a refused replace as NotFound in binary mode, False in ascii mode.
try:
    assert not mc.replace("py:nokey", "x")
except pylibmc.NotFound:
    assert binary
assert mc.replace("py:a", "world")
assert mc.append("py:a", "!")
assert mc.prepend("py:a", ">")
assert mc.get("py:a") == ">world!"
mc.set("py:n", 10)
assert mc.incr("py:n", 5) == 15
assert mc.decr("py:n", 100) == 0
try:
    mc.incr("py:absent")
    raise AssertionError("incr of a missing key must fail")
except pylibmc.NotFound:
    pass
value, cas = mc.gets("py:a")
assert value == ">world!"
assert mc.cas("py:a", "swapped", cas)
assert not mc.cas("py:a", "again", cas), "a stale CAS must be refused"
assert mc.get("py:a") == "swapped"
# Multi-get: GETKQ... + NOOP in binary mode, one get line in ascii mode.
keys = [f"py:m{i}" for i in range(200)]
assert mc.set_multi({k: k.upper() for k in keys}) == []
got = mc.get_multi(keys + ["py:none"])
assert got == {k: k.upper() for k in keys}, got
mc.delete_multi(keys)
assert mc.get_multi(keys) == {}
assert mc.touch("py:a", 100)
assert mc.delete("py:a")
assert not mc.delete("py:a")
big = "v" * 500000
assert mc.set("py:big", big)
assert mc.get("py:big") == big
stats = mc.get_stats()
assert stats and "curr_items" in stats[0][1], stats
assert mc.flush_all()
assert mc.get("py:big") is None
print("ok")
