"""A WebSocket echo server on Python's `websockets` (10.x), a peer nobody here wrote.

Usage: python-echo-server.py HOST PORT [CERT KEY]   (PORT 0 = any free port; CERT/KEY = wss://)
Prints "ready PORT" once listening. Echoes every message with its type, except two commands:
  "cmd:ping PAYLOAD"     pings with PAYLOAD, then sends "pong PAYLOAD" once the pong arrived;
  "cmd:close CODE REASON" closes the connection with that code and reason.
Runs until stdin closes (the test process ending takes the server with it).
"""
import asyncio
import ssl
import sys

import websockets


async def echo(ws):
    async for message in ws:
        if isinstance(message, str) and message.startswith("cmd:ping "):
            payload = message[len("cmd:ping "):]
            await (await ws.ping(payload))
            await ws.send("pong " + payload)
        elif isinstance(message, str) and message.startswith("cmd:close "):
            code, _, reason = message[len("cmd:close "):].partition(" ")
            await ws.close(int(code), reason)
        else:
            await ws.send(message)


async def main():
    host, port = sys.argv[1], int(sys.argv[2])
    context = None
    if len(sys.argv) == 5:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
    async with websockets.serve(echo, host, port, ssl=context, max_size=4 * 2**20) as server:
        print("ready", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


asyncio.run(main())
