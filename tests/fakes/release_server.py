#!/usr/bin/env python3
"""Fake Kasm release server: serves one file over HTTPS (or HTTP) on loopback, honours
Range, and misbehaves on request.

  release_server.py --port 0 [--bind ADDR] --file PATH [--cert C --key K] [--fault MODE]
                    [--fault-times N] [--drop-at BYTES] [--trickle-rate BPS]

Faults (applied to the first N GET requests, all when N is -1):
  drop       send the headers and the first --drop-at bytes (default: half), then cut
             the connection
  stall      send the first --drop-at bytes, then stop sending but keep the connection
  wrong      send the right length but different bytes
  404, 500   answer with that status
  trickle    send the body at --trickle-rate bytes per second
  no-range   ignore Range and always send the whole file with 200

Prints "READY <port>" on stdout once listening; logs one line per finished request on
stderr: "GET /path range=bytes=N- status=206 sent=BYTES fault=MODE".
"""
import argparse
import http.server
import os
import re
import socket
import ssl
import sys
import threading
import time

args = None
lock = threading.Lock()
faulted = 0


def take_fault():
    global faulted
    with lock:
        if args.fault == "none":
            return "none"
        if args.fault_times >= 0 and faulted >= args.fault_times:
            return "none"
        faulted += 1
        return args.fault


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # the request log is ours (one line per request)
        pass

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        self._logged = False
        fault = "none" if head else take_fault()
        rng = self.headers.get("Range")
        sent = 0
        status = 0
        try:
            if fault in ("404", "500"):
                status = int(fault)
                body = b"not here\n" if status == 404 else b"server error\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                return
            size = os.path.getsize(args.file)
            start = 0
            if rng and fault != "no-range":
                m = re.match(r"bytes=(\d+)-$", rng.strip())
                if not m:
                    status = 400
                    self.send_error(400, "unsupported Range")
                    return
                start = int(m.group(1))
                if start >= size:
                    status = 416
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            else:
                status = 200
            length = size - start
            self.send_response(status)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes" if fault != "no-range" else "none")
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
            self.end_headers()
            if head:
                return
            limit = length
            if fault in ("drop", "stall"):
                cut = args.drop_at if args.drop_at >= 0 else size // 2
                limit = max(0, min(length, cut - start))
            with open(args.file, "rb") as f:
                f.seek(start)
                chunk = 1 << 20
                if fault == "trickle":
                    chunk = max(1, args.trickle_rate // 10)
                while sent < limit:
                    data = f.read(min(chunk, limit - sent))
                    if not data:
                        break
                    if fault == "wrong":
                        data = bytes(b ^ 0x5A for b in data)
                    self.wfile.write(data)
                    sent += len(data)
                    if fault == "trickle":
                        self.wfile.flush()
                        time.sleep(0.1)
            self.wfile.flush()
            if fault == "drop":
                # Cut without a TLS close_notify or the rest of the body: a dropped link.
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            elif fault == "stall":
                self.log_request_line(rng, status, sent, fault)
                time.sleep(3600)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        finally:
            self.log_request_line(rng, status, sent, fault)

    def log_request_line(self, rng, status, sent, fault):
        if getattr(self, "_logged", False):
            return
        self._logged = True
        log("%s %s range=%s status=%d sent=%d fault=%s" % (
            self.command, self.path, rng or "-", status, sent, fault))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, so one slow client cannot
        # hold up accept().
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log("TLS handshake failed: %s" % e)
                return
        self.RequestHandlerClass(request, client_address, self)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--file", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--fault", default="none",
                   choices=["none", "drop", "stall", "wrong", "404", "500", "trickle", "no-range"])
    p.add_argument("--fault-times", type=int, default=-1)
    p.add_argument("--drop-at", type=int, default=-1)
    p.add_argument("--trickle-rate", type=int, default=20000)
    args = p.parse_args()

    server = Server((args.bind, args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.tls = ctx
    print("READY %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
