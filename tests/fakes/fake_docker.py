#!/usr/bin/env python3
"""A broken Docker Engine on a unix socket, for what a real dockerd will not do on demand.

--socket PATH   where to listen (required; --port is accepted and ignored)
--mode 500      every request: HTTP 500 {"message": "fake daemon failure"}
       garbage  every request: bytes that are not HTTP, then close
       badjson  200 with a body that is not JSON
       badstream exec create works; exec start answers 200 with bytes that are not a
                 multiplexed raw stream
Prints "READY 0" once listening; logs "<METHOD> <path>" on stderr.
"""
import argparse
import json
import os
import socketserver
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--socket", required=True)
parser.add_argument("--mode", required=True, choices=["500", "garbage", "badjson", "badstream"])
args = parser.parse_args()


def response(status, body, ctype="application/json", length=True):
    reason = {200: "OK", 201: "Created", 500: "Internal Server Error"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    head += "Connection: close\r\n\r\n"
    return head.encode() + body


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode(errors="replace").strip()
        length = 0
        while True:
            h = self.rfile.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":", 1)[1])
        if length:
            self.rfile.read(length)
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        method, path = (line.split(" ") + ["", ""])[:2]
        if args.mode == "500":
            out = response(500, json.dumps({"message": "fake daemon failure"}).encode())
        elif args.mode == "garbage":
            out = b"\x00\x01SSH-2.0-not-docker\r\n\xff\xfe"
        elif args.mode == "badjson":
            out = response(200, b"<html>this is not the engine</html>", "text/html")
        elif path.endswith("/exec"):
            out = response(201, json.dumps({"Id": "abc123"}).encode())
        elif path.endswith("/start"):
            out = response(200, b"plain text, no frame headers at all\n", "application/vnd.docker.raw-stream",
                           length=False)
        else:
            out = response(200, json.dumps({"Running": False, "ExitCode": 0}).encode())
        self.wfile.write(out)


if os.path.exists(args.socket):
    os.unlink(args.socket)
server = socketserver.ThreadingUnixStreamServer(args.socket, Handler)
print("READY 0", flush=True)
try:
    server.serve_forever()
finally:
    os.unlink(args.socket)
