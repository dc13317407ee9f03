#!/usr/bin/env python3
"""Fake Kasm release server: serves one file over HTTPS (or HTTP) on loopback, honours
Range, and misbehaves on request.

  release_server.py --port 0 [--bind ADDR] --file PATH [--cert C --key K] [--fault MODE]
                    [--fault-times N] [--drop-at BYTES] [--trickle-rate BPS]
                    [--rate-per-connection BPS]

Range follows RFC 9110 §14 as S3 does for one range: "bytes=N-" and "bytes=N-M" (M
inclusive, clamped to the last byte), 206 with "Content-Range: bytes N-M/SIZE"; a first
byte at or past the end is 416 with "Content-Range: bytes */SIZE"; other forms (several
ranges, suffix ranges) are answered 400 here, a simplification the client never meets.
--rate-per-connection caps every response's body rate, as S3 caps one connection far
below what an instance can take (the reason tools use parallel ranged GETs).

Faults (applied to the first N GET requests, all when N is -1):
  drop       send the headers and the first --drop-at bytes (default: half), then cut
             the connection
  stall      send the first --drop-at bytes, then stop sending but keep the connection
  wrong      send the right length but different bytes
  404, 500   answer with that status
  trickle    send the body at --trickle-rate bytes per second
  no-range   ignore Range and always send the whole file with 200 (Accept-Ranges: none)
  ignore-range  advertise "Accept-Ranges: bytes" (HEAD too) but answer every GET with
             200 and the whole file, as a server or proxy that drops the Range header
  range-drop    for a bounded range (bytes=N-M) send the headers and half the range,
             then cut the connection
  range-long    for a bounded range answer 206 with one byte more than asked (length
             and Content-Range say so): a server that returns a wrong length

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
    # TCP_NODELAY on every connection. Without it, a reply written as headers then body
    # waits for the client's delayed ACK: 40 ms on every request. ASSUMPTION (labelled as
    # one in docs/platform.md, "Small HTTP answers and Nagle"): the real server adds no
    # such stall; nginx, in front of Kasm's manager, is documented not to.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):  # the request log is ours (one line per request)
        pass

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        self._logged = False
        fault = "none" if head else take_fault()
        rng_header = self.headers.get("Range") or ""
        if fault in ("range-drop", "range-long") and not re.match(r"bytes=\d+-\d+$", rng_header.strip()):
            # Only bounded ranges misbehave; give the fault back for the next one.
            global faulted
            with lock:
                faulted -= 1
            fault = "none"
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
            last = size - 1
            ignores_range = fault in ("no-range", "ignore-range")
            if rng and not ignores_range:
                m = re.match(r"bytes=(\d+)-(\d*)$", rng.strip())
                if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                    status = 400
                    self.send_error(400, "unsupported Range")
                    return
                start = int(m.group(1))
                if m.group(2):
                    last = min(int(m.group(2)), size - 1)
                if start >= size:
                    status = 416
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
                if fault == "range-long":
                    if last + 1 < size:
                        last += 1
                    elif start > 0:
                        start -= 1  # the range ends at the file's end: the extra byte goes in front
            else:
                status = 200
            length = last - start + 1
            self.send_response(status)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "none" if fault == "no-range" else "bytes")
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, last, size))
            self.end_headers()
            if head:
                return
            limit = length
            if fault in ("drop", "stall"):
                cut = args.drop_at if args.drop_at >= 0 else size // 2
                limit = max(0, min(length, cut - start))
            if fault == "range-drop":
                limit = length // 2
            with open(args.file, "rb") as f:
                f.seek(start)
                chunk = 1 << 20
                if fault == "trickle":
                    chunk = max(1, args.trickle_rate // 10)
                # Per-connection cap: a chunk every 20 ms, so the rate holds within 2%.
                paced = args.rate_per_connection > 0
                if paced:
                    chunk = min(chunk, max(1, args.rate_per_connection // 50))
                began = time.monotonic()
                while sent < limit:
                    if paced:
                        due = began + sent / args.rate_per_connection
                        now = time.monotonic()
                        if due > now:
                            time.sleep(due - now)
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
            if fault in ("drop", "range-drop"):
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
                   choices=["none", "drop", "stall", "wrong", "404", "500", "trickle", "no-range",
                            "ignore-range", "range-drop", "range-long"])
    p.add_argument("--fault-times", type=int, default=-1)
    p.add_argument("--drop-at", type=int, default=-1)
    p.add_argument("--trickle-rate", type=int, default=20000)
    p.add_argument("--rate-per-connection", type=int, default=0)
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
