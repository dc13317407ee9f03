#!/usr/bin/env python3
"""A unix-socket proxy in front of a real Docker Engine that holds chosen API calls, so a
test can catch the client in the middle of them (e.g. SIGTERM while `docker exec` runs).

  slow_docker_proxy.py --listen PATH --upstream PATH [--match SUBSTR] [--delay SECONDS]

Bytes pass through unchanged in both directions (so hijacked exec streams work); a request
whose first line contains --match (default "/exec/") waits --delay seconds before it is
forwarded. Prints "READY 0" once listening; logs "<request line> delayed=<s>" on stderr.
"""
import argparse
import os
import socket
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0, help="ignored (the harness passes it)")
parser.add_argument("--listen", required=True)
parser.add_argument("--upstream", required=True)
parser.add_argument("--match", default="/exec/")
parser.add_argument("--delay", type=float, default=5.0)
args = parser.parse_args()


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(args.upstream)
        first = client.recv(65536)
        line = first.split(b"\r\n", 1)[0].decode(errors="replace")
        delay = args.delay if args.match in line else 0
        sys.stderr.write(f"{line} delayed={delay}\n")
        sys.stderr.flush()
        if delay:
            time.sleep(delay)
        upstream.sendall(first)
        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join()
    except OSError:
        pass
    finally:
        client.close()
        upstream.close()


if os.path.exists(args.listen):
    os.unlink(args.listen)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(args.listen)
server.listen(16)
print("READY 0", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
