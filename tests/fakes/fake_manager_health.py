#!/usr/bin/env python3
"""Fake Kasm manager health check over HTTPS: GET /api/__healthcheck.

--cert/--key: the server's TLS pair (made by the test with the openssl CLI).
--mode ok        200 {"ok": true}
       notok     200 {"ok": false}
       500       500 with an HTML body
       notjson   200 with a body that is not JSON
--ok-first N: answer the first N health checks as `ok`, then as --mode says (a manager
       that goes down after kasm-bootstrap's check-manager asked it).
Prints "READY <port>" once listening; logs "<METHOD> <path> -> <status>" on stderr.
"""
import argparse
import http.server
import json
import ssl
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--bind", default="127.0.0.1")
parser.add_argument("--cert", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--mode", default="ok", choices=["ok", "notok", "500", "notjson"])
parser.add_argument("--ok-first", type=int, default=0)
args = parser.parse_args()
answered = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY on every connection, as nginx does by default (`tcp_nodelay on`;
    # docs/platform.md, "Small HTTP answers and Nagle"). Without it, a reply written as
    # headers then body waits for the client's delayed ACK: 40 ms on every request.
    disable_nagle_algorithm = True

    def answer(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        sys.stderr.write(f"{self.command} {self.path} -> {status}\n")
        sys.stderr.flush()

    def do_GET(self):
        if self.path != "/api/__healthcheck":
            return self.answer(404, json.dumps({"error": "not found"}))
        answered[0] += 1
        if args.mode == "ok" or answered[0] <= args.ok_first:
            return self.answer(200, json.dumps({"ok": True}))
        if args.mode == "notok":
            return self.answer(200, json.dumps({"ok": False, "error": "database down"}))
        if args.mode == "500":
            return self.answer(500, "<html>Internal Server Error</html>", "text/html")
        return self.answer(200, "<html>maintenance</html>", "text/html")

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(args.cert, args.key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(f"READY {server.server_address[1]}", flush=True)
server.serve_forever()
