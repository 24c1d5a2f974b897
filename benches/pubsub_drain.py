#!/usr/bin/env python3
"""Subscribers for benches/pubsub.sh: opens N connections to a RESP server, SUBSCRIBEs each to a
channel, prints READY once every subscription is confirmed, then drains the messages until it
reads a line on stdin (or its time limit passes) and prints how many bytes each subscriber got.

Draining is done in large recv() calls over a selector, so the subscriber side costs little CPU
per message; the message count is derived from bytes (every message has the same size), which
keeps the loop free of parsing.
"""
import selectors
import socket
import sys
import time

port, subs, channel, limit = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode(), float(sys.argv[4])
sel = selectors.DefaultSelector()
conns = []
cmd = b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel), channel)
confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel)
for _ in range(subs):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(cmd)
    got = b""
    while len(got) < len(confirm):
        got += s.recv(len(confirm) - len(got))
    assert got == confirm, got
    s.setblocking(False)
    conns.append(s)
    sel.register(s, selectors.EVENT_READ, len(conns) - 1)
sel.register(sys.stdin, selectors.EVENT_READ, -1)
print("READY", flush=True)
received = [0] * subs
deadline = time.time() + limit
done = False
while not done and time.time() < deadline:
    for key, _ in sel.select(timeout=0.5):
        if key.data == -1:
            sys.stdin.readline()
            done = True
            continue
        try:
            data = key.fileobj.recv(1 << 20)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(key.fileobj)
            continue
        received[key.data] += len(data)
# Whatever is still in flight after the publisher finished.
end = time.time() + 2
while time.time() < end:
    events = sel.select(timeout=0.2)
    if not events:
        break
    for key, _ in events:
        if key.data == -1:
            continue
        try:
            data = key.fileobj.recv(1 << 20)
        except BlockingIOError:
            continue
        if data:
            received[key.data] += len(data)
print("BYTES", min(received), max(received), flush=True)
