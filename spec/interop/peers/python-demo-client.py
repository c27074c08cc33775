"""A client of the demo's JSON protocol written against Python's `websockets`, not our code.

Usage: python-demo-client.py ws://HOST:PORT/ws   (prints "ok", or fails with an AssertionError)
"""
import asyncio
import json
import sys

import websockets


async def take(ws, kind):
    """The next message of this type, skipping others (users lists, stream samples)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] == kind:
            return message


async def main(url):
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "echo", "text": "early"}))
        assert (await take(ws, "error"))["reason"] == "log in first"

        await ws.send(json.dumps({"type": "login", "name": "py"}))
        assert await take(ws, "welcome") == {"type": "welcome", "name": "py"}
        assert "py" in (await take(ws, "users"))["names"]

        await ws.send("not json")
        assert (await take(ws, "error"))["reason"] == "malformed JSON"

        await ws.send(json.dumps({"type": "echo", "text": "snake"}))
        assert await take(ws, "echo") == {"type": "echo", "text": "snake"}

        await ws.send(json.dumps({"type": "route", "to": "py", "text": "to myself"}))
        assert await take(ws, "routed") == {"type": "routed", "from": "py", "text": "to myself"}

        await ws.send(json.dumps({"type": "join", "group": "pythons"}))
        await take(ws, "joined")
        await ws.send(json.dumps({"type": "publish", "group": "pythons", "text": "hiss"}))
        assert await take(ws, "group") == {"type": "group", "group": "pythons", "from": "py", "text": "hiss"}

        await ws.send(json.dumps({"type": "subscribe"}))
        await take(ws, "subscribed")
        first = await take(ws, "stream")
        second = await take(ws, "stream")
        assert second["seq"] > first["seq"] and isinstance(second["t"], int)
        await ws.send(json.dumps({"type": "unsubscribe"}))
        await take(ws, "unsubscribed")
    print("ok")


asyncio.run(main(sys.argv[1]))
