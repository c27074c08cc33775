"""A WebSocket client on Python's `websockets` (10.x), a peer nobody here wrote, against an echo server.

Usage: python-client.py URL MODE
  MODE "echo":         offers subprotocols v1 and v2; echoes text and binary messages of several
                       sizes (one of them sent fragmented), pings, then closes with 4000 "python done".
  MODE "server-close": sends "close me" and waits for the server to close the connection.
  MODE "deflate":      with websockets' default permessage-deflate offer, echoes text and binary
                       messages of several sizes and 100 similar JSON texts, then closes with 1000;
                       reports the extension it agreed to, as websockets understood it.
Prints one JSON object with what it saw on stdout; exits 1 (reason on stderr) when an echo is wrong.
Run it with the system interpreter (/usr/bin/python3): Debian's python3-websockets 10.4.
"""
import asyncio
import json
import os
import sys

import websockets

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 300_000]


def text_of(size):
    # Two-byte characters exercise UTF-8 across frame and read boundaries.
    return ("aé" * size)[:size]


async def expect_echo(ws, message, what):
    await ws.send(message)
    reply = await ws.recv()
    if type(reply) is not type(message) or reply != message:
        raise AssertionError(f"{what}: echo differs (sent {len(message)} {type(message).__name__}, "
                             f"got {len(reply)} {type(reply).__name__})")


async def echo(url):
    seen = {"echoed": 0}
    async with websockets.connect(url, subprotocols=["v1", "v2"], compression=None,
                                  max_size=4 * 1024 * 1024, ping_interval=None) as ws:
        seen["subprotocol"] = ws.subprotocol
        for size in SIZES:
            await expect_echo(ws, text_of(size), f"text {size}")
            await expect_echo(ws, os.urandom(size), f"binary {size}")
            seen["echoed"] += 2
        # A fragmented text message: websockets sends an iterable as one message in fragments.
        parts = ["frag", "mént", "ed ✓"]
        await ws.send(iter(parts))
        reply = await ws.recv()
        if reply != "".join(parts):
            raise AssertionError(f"fragmented: got {reply!r}")
        seen["echoed"] += 1
        pong = await ws.ping(b"py-ping")
        await asyncio.wait_for(pong, 5)
        seen["pong"] = True
        await ws.close(code=4000, reason="python done")
        seen["close_code"] = ws.close_code
        seen["close_reason"] = ws.close_reason
    return seen


async def server_close(url):
    async with websockets.connect(url, compression=None, ping_interval=None) as ws:
        await ws.send("close me")
        try:
            message = await asyncio.wait_for(ws.recv(), 5)
            raise AssertionError(f"expected a close, got {message!r}")
        except websockets.ConnectionClosed as closed:
            return {"close_code": closed.rcvd.code if closed.rcvd else None,
                    "close_reason": closed.rcvd.reason if closed.rcvd else None,
                    "clean": closed.rcvd is not None and closed.sent is not None}


async def deflate(url):
    seen = {"echoed": 0}
    async with websockets.connect(url, max_size=4 * 1024 * 1024, ping_interval=None) as ws:
        seen["extensions"] = [
            {"name": e.name, "remote_no_context_takeover": e.remote_no_context_takeover,
             "local_no_context_takeover": e.local_no_context_takeover,
             "remote_max_window_bits": e.remote_max_window_bits,
             "local_max_window_bits": e.local_max_window_bits}
            for e in ws.extensions]
        for size in SIZES:
            await expect_echo(ws, text_of(size), f"text {size}")
            await expect_echo(ws, b"\x2a" * (size - size // 4) + os.urandom(size // 4), f"binary {size}")
            seen["echoed"] += 2
        for i in range(100):
            await expect_echo(ws, json.dumps({"type": "stream", "seq": i, "value": i * 0.25}), f"json {i}")
            seen["echoed"] += 1
        await ws.close(code=1000)
        seen["close_code"] = ws.close_code
    return seen


def main():
    url, mode = sys.argv[1], sys.argv[2]
    run = {"echo": echo, "server-close": server_close, "deflate": deflate}[mode]
    try:
        seen = asyncio.run(asyncio.wait_for(run(url), 20))
    except AssertionError as err:
        print(str(err), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
