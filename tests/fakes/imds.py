#!/usr/bin/env python3
"""Fake cloud metadata service: AWS IMDSv2, GCP, Azure, Oracle Cloud (v2) and DigitalOcean.

Speaks real HTTP with each service's header rules, plus fault modes the address
detection must survive. Prints "READY <port>" once listening; logs one line per request
on stderr ("<METHOD> <path> token=<yes|no|bad> -> <status>"). Options may repeat; the
last wins (so a test can give --port 80 after the harness's --port 0).
"""
import argparse
import http.server
import socket
import sys
import threading
import time
import uuid

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--bind", default="127.0.0.1")
parser.add_argument("--cloud", default="aws", choices=["aws", "gcp", "azure", "oci", "digitalocean"])
# required: GET without a token -> 401 (HttpTokens=required). optional: IMDSv1 works too.
# unsupported: PUT /latest/api/token -> 405 (an EC2-compatible service with IMDSv1 only).
parser.add_argument("--tokens", default="required", choices=["required", "optional", "unsupported"])
parser.add_argument("--disabled", action="store_true", help="403 for everything (HttpEndpoint=disabled)")
parser.add_argument("--local-ipv4", default="172.31.7.19")
parser.add_argument("--public-ipv4", default="", help="empty: 404 like an instance without one")
parser.add_argument("--ipv6", default="", help="empty: 404")
parser.add_argument("--mac", default="0e:12:34:56:78:9a")
parser.add_argument("--mac-ipv6s", default="", help="empty: 404")
parser.add_argument("--private-ip", default="10.128.0.7", help="GCP/Azure/OCI/DO private address")
parser.add_argument("--public-ip", default="203.0.113.40", help="DO public address")
parser.add_argument("--no-private", action="store_true", help="DO: 404 for the private interface")
parser.add_argument("--throttle", type=int, default=0, help="first N requests get --throttle-status")
parser.add_argument("--throttle-status", type=int, default=429)
parser.add_argument("--retry-after", default="", help="Retry-After header on throttled answers")
parser.add_argument("--slow-ms", type=int, default=0, help="delay before every answer")
parser.add_argument("--hang", action="store_true", help="read requests, never answer any")
parser.add_argument("--hang-token", action="store_true", help="never answer the token PUT (hop limit)")
parser.add_argument("--garbage", default="", choices=["", "body", "binary", "http", "huge", "token", "json"],
                    help="body: HTML instead of the item; binary: random bytes; http: not HTTP at all; "
                         "huge: 2 MB body; token: a token with spaces and newlines; json: OCI body not JSON")
parser.add_argument("--token-uses", type=int, default=0, help="a token is refused (401) after N GETs; 0 = never")
parser.add_argument("--no-flavor-header", action="store_true", help="GCP: answer without Metadata-Flavor")
parser.add_argument("--oci-body", default="", help="OCI: this body for /opc/v2/vnics/")
args = parser.parse_args()

lock = threading.Lock()
state = {"requests": 0, "tokens": {}}


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

    def log_message(self, *_):
        pass

    def answer(self, status, body=b"", headers=None, note=""):
        if isinstance(body, str):
            body = body.encode()
        log(f"{self.command} {self.path}{note} -> {status}")
        if args.slow_ms:
            time.sleep(args.slow_ms / 1000.0)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def hang(self, note):
        log(f"{self.command} {self.path}{note} -> (no answer)")
        time.sleep(3600)

    def item_body(self, value):
        if args.garbage == "body":
            return b"<html><body>Captive portal: please log in</body></html>"
        if args.garbage == "binary":
            return bytes([0, 1, 2, 0xFF, 0xFE, 10, 27]) * 3
        if args.garbage == "huge":
            return b"1" * (2 << 20)
        return value.encode()

    def handle_one(self):
        body_len = int(self.headers.get("Content-Length") or 0)
        if body_len:
            self.rfile.read(body_len)
        with lock:
            state["requests"] += 1
            n = state["requests"]
        if args.hang:
            return self.hang("")
        if args.garbage == "http":
            log(f"{self.command} {self.path} -> (garbage bytes)")
            self.wfile.write(b"\x00\x13SSH-2.0-garbage\r\n\xff\xfe not http at all\r\n\r\n")
            self.close_connection = True
            return
        if n <= args.throttle:
            headers = {"Retry-After": args.retry_after} if args.retry_after else {}
            return self.answer(args.throttle_status, "Too Many Requests", headers, " (throttled)")
        if args.disabled:
            return self.answer(403, "Forbidden")
        getattr(self, "cloud_" + args.cloud)()

    def cloud_aws(self):
        path = self.path.split("?")[0]
        if path == "/latest/api/token":
            if self.command != "PUT":
                return self.answer(405, "", note=" (token needs PUT)")
            if args.tokens == "unsupported":
                return self.answer(405, "Method Not Allowed")
            if self.headers.get("X-Forwarded-For"):
                return self.answer(403, "Forbidden", note=" (X-Forwarded-For)")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400, "Bad Request", note=f" ttl={ttl!r}")
            if args.hang_token:
                return self.hang(f" ttl={ttl}")
            token = ("bad token\nwith spaces" if args.garbage == "token" else
                     "AQAE" + uuid.uuid4().hex + "==")
            with lock:
                state["tokens"][token] = 0
            return self.answer(200, token, {"X-aws-ec2-metadata-token-ttl-seconds": ttl}, f" ttl={ttl}")
        if self.command != "GET" or not path.startswith("/latest/meta-data/"):
            return self.answer(404, "Not Found")
        token = self.headers.get("X-aws-ec2-metadata-token")
        mark = "no"
        if token is not None:
            with lock:
                uses = state["tokens"].get(token)
                valid = uses is not None and (args.token_uses == 0 or uses < args.token_uses)
                if valid:
                    state["tokens"][token] = uses + 1
            if not valid:
                return self.answer(401, "Unauthorized", note=" token=bad")
            mark = "yes"
        elif args.tokens == "required":
            return self.answer(401, "Unauthorized", note=" token=no")
        item = path[len("/latest/meta-data/"):]
        items = {
            "local-ipv4": args.local_ipv4,
            "public-ipv4": args.public_ipv4,
            "ipv6": args.ipv6,
            "mac": args.mac,
            f"network/interfaces/macs/{args.mac}/ipv6s": args.mac_ipv6s,
        }
        value = items.get(item, "")
        if not value:
            return self.answer(404, "Not Found", note=f" token={mark}")
        return self.answer(200, self.item_body(value), {"Content-Type": "text/plain"}, f" token={mark}")

    def cloud_gcp(self):
        if self.headers.get("Metadata-Flavor") != "Google" or self.headers.get("X-Forwarded-For"):
            return self.answer(403, "Missing Metadata-Flavor:Google header.", note=" flavor=no")
        headers = {} if args.no_flavor_header else {"Metadata-Flavor": "Google"}
        if self.path == "/computeMetadata/v1/instance/network-interfaces/0/ip":
            return self.answer(200, self.item_body(args.private_ip), headers, " flavor=yes")
        return self.answer(404, "Not Found", headers, " flavor=yes")

    def cloud_azure(self):
        if self.headers.get("Metadata") != "true":
            return self.answer(400, '{"error":"Bad request. Required metadata header not specified"}',
                               note=" metadata-header=no")
        path, _, query = self.path.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if "api-version" not in params:
            return self.answer(400, '{"error":"Bad request. api-version was not specified"}')
        if path == "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress":
            if params.get("format") != "text":
                return self.answer(400, '{"error":"format=text required for a leaf"}')
            return self.answer(200, self.item_body(args.private_ip), note=" metadata-header=yes")
        return self.answer(404, "Not Found")

    def cloud_oci(self):
        if self.headers.get("Authorization") != "Bearer Oracle":
            return self.answer(401, "Unauthorized", note=" auth=no")
        if self.path.rstrip("/") == "/opc/v2/vnics":
            if args.oci_body:
                body = args.oci_body
            elif args.garbage == "json":
                body = "<html>not json</html>"
            else:
                body = ('[{"vnicId":"ocid1.vnic.oc1..aaaa","privateIp":"%s","vlanTag":0,'
                        '"macAddr":"02:00:17:00:00:01","virtualRouterIp":"10.0.0.1",'
                        '"subnetCidrBlock":"10.0.0.0/24","nicIndex":0}]' % args.private_ip)
            return self.answer(200, self.item_body(body) if args.garbage in ("binary", "huge") else body,
                               {"Content-Type": "application/json"}, " auth=yes")
        return self.answer(404, "Not Found", note=" auth=yes")

    def cloud_digitalocean(self):
        if self.path == "/metadata/v1/interfaces/private/0/ipv4/address" and not args.no_private:
            return self.answer(200, self.item_body(args.private_ip))
        if self.path == "/metadata/v1/interfaces/public/0/ipv4/address":
            return self.answer(200, self.item_body(args.public_ip))
        return self.answer(404, "Not Found")

    def do_GET(self):
        self.handle_one()

    def do_PUT(self):
        self.handle_one()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET


server = Server((args.bind, args.port), Handler)
print(f"READY {server.server_address[1]}", flush=True)
server.serve_forever()
