#!/usr/bin/env python3
"""The rest of EC2's instance metadata service that cloud-init's Ec2 datasource reads, in
front of tests/fakes/imds.py (which keeps the IMDSv2 token rules and the address items).

  ec2_metadata.py --upstream HOST:PORT [--user-data FILE] [--public-key FILE]
                  [--bind ADDR] [--port N] [--mac MAC] [--local-ipv4 IP]
                  [--instance-id ID] [--region R]

Every request is first put to the upstream imds.py: PUT /latest/api/token is answered by it
(its token, its TTL and X-Forwarded-For rules); a GET is allowed only when the upstream
accepts its token for /latest/meta-data/mac (so IMDSv2 "required" holds here exactly as
there: no token or an unknown one is 401). An item the upstream has (local-ipv4, mac, ...)
is its answer; the rest comes from the tree below, under every API version cloud-init asks
for (/<version>/... as /latest/...): the meta-data listing and items, the network
interface for the one MAC, placement, /user-data (the file, byte for byte; 404 without
one, as for an instance launched without user data), the key pair's public key
(public-keys/0=<name>, public-keys/0/openssh-key: the instance's launch key, which
cloud-init gives to the image's default user) and /dynamic/instance-identity/document. Which paths cloud-init reads, and the AWS layout
they follow: docs/boot.md, "Instance metadata".

Prints "READY <port>"; logs "<METHOD> <path> -> <status>" on stderr.
"""
import argparse
import http.client
import http.server
import json
import re
import socket
import sys

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=0)
p.add_argument("--bind", default="127.0.0.1")
p.add_argument("--upstream", required=True, help="HOST:PORT of tests/fakes/imds.py")
p.add_argument("--user-data", default="", help="empty: the instance has no user data (404)")
p.add_argument("--public-key", default="", help="OpenSSH public key file of the launch key pair")
p.add_argument("--key-name", default="kb-boot-test")
p.add_argument("--mac", default="0e:12:34:56:78:9a")
p.add_argument("--local-ipv4", default="10.77.0.2")
p.add_argument("--subnet", default="10.77.0.0/24")
p.add_argument("--instance-id", default="i-0b00715e5a1b2c3d4")
p.add_argument("--region", default="eu-west-1")
args = p.parse_args()
up_host, _, up_port = args.upstream.rpartition(":")

USER_DATA = None
if args.user_data:
    with open(args.user_data, "rb") as f:
        USER_DATA = f.read()

az = args.region + "a"
mac = args.mac
iface = {
    "device-number": "0",
    "interface-id": "eni-0b00715e5a1b2c3d4",
    "local-hostname": "ip-" + args.local_ipv4.replace(".", "-") + "." + args.region + ".compute.internal",
    "local-ipv4s": args.local_ipv4,
    "mac": mac,
    "owner-id": "123456789012",
    "subnet-id": "subnet-0b00715e",
    "subnet-ipv4-cidr-block": args.subnet,
    "vpc-id": "vpc-0b00715e",
    "vpc-ipv4-cidr-block": args.subnet,
    "vpc-ipv4-cidr-blocks": args.subnet,
}
TREE = {
    "ami-id": "ami-0b00715e5a1b2c3d4",
    "ami-launch-index": "0",
    "hostname": iface["local-hostname"],
    "instance-id": args.instance_id,
    "instance-type": "t3.medium",
    "local-hostname": iface["local-hostname"],
    "local-ipv4": args.local_ipv4,
    "mac": mac,
    "placement": {"availability-zone": az, "region": args.region},
    "network": {"interfaces": {"macs": {mac: iface}}},
}
# An instance launched with a key pair (AWS: "Instance metadata categories", public-keys/):
# the listing is "0=<key name>", the key itself under public-keys/0/openssh-key.
PUBLIC_KEY = None
if args.public_key:
    with open(args.public_key) as f:
        PUBLIC_KEY = f.read().strip() + "\n"
    TREE["public-keys"] = {"0": {"openssh-key": PUBLIC_KEY}}
DOCUMENT = json.dumps({
    "accountId": "123456789012", "architecture": "x86_64", "availabilityZone": az,
    "imageId": TREE["ami-id"], "instanceId": args.instance_id, "instanceType": "t3.medium",
    "pendingTime": "2026-12-01T00:00:00Z", "privateIp": args.local_ipv4, "region": args.region,
    "version": "2017-09-30",
}, indent=2)
# The API versions the real service lists at / (those cloud-init 22.4 asks for among them).
VERSIONS = ["1.0", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest"]


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def upstream(method, path, headers):
    conn = http.client.HTTPConnection(up_host, int(up_port), timeout=10)
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def lookup(parts):
    """(body, is_listing) for a path under meta-data, or None."""
    node = TREE
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        return "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items()), True
    return node, False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *_):
        pass

    def answer(self, status, body=b"", headers=None, note=""):
        if isinstance(body, str):
            body = body.encode()
        log(f"{self.command} {self.path}{note} -> {status}")
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forwarded_headers(self):
        return {k: v for k, v in self.headers.items() if k.lower().startswith("x-")}

    def do_PUT(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body, headers = upstream("PUT", self.path, self.forwarded_headers())
        keep = {k: v for k, v in headers.items() if k.lower().startswith("x-aws")}
        self.answer(status, body, keep, " (upstream)")

    def do_GET(self):
        path = self.path.split("?")[0]
        m = re.fullmatch(r"/([^/]+)(/.*)?", path)
        if path == "/":
            return self.answer(200, "\n".join(VERSIONS))
        if not m or m.group(1) not in VERSIONS:
            return self.answer(404, "Not Found")
        rest = (m.group(2) or "/").lstrip("/")
        # The token, judged by the upstream exactly as for its own items.
        status, body, _ = upstream("GET", "/latest/meta-data/mac", self.forwarded_headers())
        if status != 200:
            return self.answer(status, body, {"Content-Type": "text/plain"}, " (upstream token check)")
        if rest == "user-data":
            if USER_DATA is None:
                return self.answer(404, "Not Found")
            return self.answer(200, USER_DATA, {"Content-Type": "application/octet-stream"})
        if rest in ("dynamic", "dynamic/"):
            return self.answer(200, "instance-identity/")
        if rest.rstrip("/") == "dynamic/instance-identity":
            return self.answer(200, "document")
        if rest == "dynamic/instance-identity/document":
            return self.answer(200, DOCUMENT, {"Content-Type": "text/plain"})
        if rest == "meta-data" or rest.startswith("meta-data/"):
            item = rest[len("meta-data"):].strip("/")
            if item:
                status, body, _ = upstream("GET", "/latest/meta-data/" + item, self.forwarded_headers())
                if status == 200:
                    return self.answer(200, body, {"Content-Type": "text/plain"}, " (upstream)")
            parts = [x for x in item.split("/") if x]
            if parts == ["public-keys"] and PUBLIC_KEY is not None:
                return self.answer(200, f"0={args.key_name}", {"Content-Type": "text/plain"})
            found = lookup(parts)
            if found is None:
                return self.answer(404, "Not Found")
            return self.answer(200, found[0], {"Content-Type": "text/plain"})
        return self.answer(404, "Not Found")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET


server = Server((args.bind, args.port), Handler)
print(f"READY {server.server_address[1]}", flush=True)
server.serve_forever()
