#!/usr/bin/env python3
"""Fake cloud metadata service: AWS IMDSv2, GCP, Azure, Oracle Cloud (v2), DigitalOcean, OpenStack.

Speaks real HTTP with each service's header rules, plus fault modes the address
detection must survive. Prints "READY <port>" once listening; logs one line per request
on stderr ("<METHOD> <path> token=<yes|no|bad> -> <status>"). Options may repeat; the
last wins (so a test can give --port 80 after the harness's --port 0).
Each service's rules, and where they are documented: docs/platform.md, "Cloud metadata
services".
"""
import argparse
import http.server
import posixpath
import socket
import sys
import threading
import time
import uuid

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--bind", default="127.0.0.1")
parser.add_argument("--cloud", default="aws", choices=["aws", "gcp", "azure", "oci", "digitalocean", "openstack"])
# required: GET without a token -> 401 (HttpTokens=required). optional: IMDSv1 works too.
# unsupported: PUT /latest/api/token -> 405 (an EC2-compatible service with IMDSv1 only).
parser.add_argument("--tokens", default="required", choices=["required", "optional", "unsupported"])
parser.add_argument("--disabled", action="store_true", help="403 for everything (HttpEndpoint=disabled)")
parser.add_argument("--local-ipv4", default="172.31.7.19")
parser.add_argument("--public-ipv4", default="", help="empty: 404 like an instance without one")
parser.add_argument("--ipv6", default="", help="empty: 404")
parser.add_argument("--mac", default="0e:12:34:56:78:9a")
parser.add_argument("--mac-ipv6s", default="", help="empty: 404")
parser.add_argument("--private-ip", default="10.128.0.7", help="GCP/Azure/OCI/DO/OpenStack private address")
parser.add_argument("--public-ip", default="203.0.113.40",
                    help="GCP external IP, Azure publicIpAddress, DO public address, OpenStack floating IP; "
                         "empty: the instance has none, said each service's own way")
parser.add_argument("--azure-lb-public-ip", default="",
                    help="Azure: the instance-level Standard-SKU public IP in /metadata/loadbalancer; "
                         "empty: 404, no load balancer metadata")
parser.add_argument("--no-private", action="store_true", help="DO: 404 for the private interface")
parser.add_argument("--throttle", type=int, default=0, help="first N requests get --throttle-status")
parser.add_argument("--throttle-status", type=int, default=429)
parser.add_argument("--retry-after", default="", help="Retry-After header on throttled answers")
parser.add_argument("--slow-ms", type=int, default=0, help="delay before every answer")
parser.add_argument("--hang", action="store_true", help="read requests, never answer any")
parser.add_argument("--hang-token", action="store_true", help="never answer the token PUT (hop limit)")
parser.add_argument("--garbage", default="",
                    choices=["", "body", "binary", "http", "huge", "token", "json", "empty", "ipv6"],
                    help="body: HTML instead of the item; binary: random bytes; http: not HTTP at all; "
                         "huge: 2 MB body; token: a token with spaces and newlines; json: OCI body not JSON; "
                         "empty: 200 with an empty body; ipv6: an IPv6 address instead of the item")
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
        if args.garbage == "empty":
            return b""
        if args.garbage == "ipv6":
            return b"2001:db8::42"
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
        headers["Content-Type"] = "application/text"
        nic0 = "/computeMetadata/v1/instance/network-interfaces/0/"
        if self.path == nic0 + "ip":
            return self.answer(200, self.item_body(args.private_ip), headers, " flavor=yes")
        # The first access config's NAT address; an instance without an external IP has no
        # access config, so the path does not exist (docs/platform.md: ASSUMPTION, 404).
        if self.path == nic0 + "access-configs/0/external-ip" and args.public_ip:
            return self.answer(200, self.item_body(args.public_ip), headers, " flavor=yes")
        return self.answer(404, "Not Found", headers, " flavor=yes")

    # The versions the IMDS documentation lists as supported (docs/platform.md).
    AZURE_VERSIONS = {
        "2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01", "2018-04-02",
        "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01",
        "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01",
        "2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01",
        "2021-11-15", "2021-12-13", "2023-07-01", "2023-11-15", "2024-03-15", "2024-07-17", "2025-04-07",
    }

    def cloud_azure(self):
        json_type = {"Content-Type": "application/json; charset=utf-8"}
        # Both are rejected; the status for X-Forwarded-For is not documented (ASSUMPTION: the
        # same 400 as for the missing header).
        if self.headers.get("Metadata") != "true" or self.headers.get("X-Forwarded-For"):
            return self.answer(400, '{"error":"Bad request. Required metadata header not specified"}', json_type,
                               " metadata-header=no")
        path, _, query = self.path.partition("?")
        pairs = [p.partition("=")[::2] for p in query.split("&") if p]
        params = dict(pairs)
        if len(params) != len(pairs):
            return self.answer(400, '{"error":"Bad request. Duplicate query parameter"}', json_type,
                               " duplicate-parameter")
        if params.get("api-version") not in self.AZURE_VERSIONS:
            return self.answer(400, '{"error":"Bad request. api-version is invalid or was not specified in the '
                                    'request. For more information refer to aka.ms/azureimds","newest-versions":'
                                    '["2025-04-07","2024-07-17","2024-03-15"]}', json_type,
                               f" api-version={params.get('api-version')!r}")
        note = " metadata-header=yes"
        leaf = "/metadata/instance/network/interface/0/ipv4/ipAddress/0/"
        leaves = {leaf + "privateIpAddress": args.private_ip, leaf + "publicIpAddress": args.public_ip}
        if path in leaves:
            if params.get("format") != "text":
                return self.answer(400, '{"error":"Bad request. format=text is required for a leaf"}', json_type,
                                   note)
            # A VM without a Basic-SKU public IP: the leaf exists and is empty.
            value = leaves[path]
            return self.answer(200, self.item_body(value) if value else b"", {"Content-Type": "text/plain"}, note)
        if path == "/metadata/loadbalancer":
            if not args.azure_lb_public_ip:
                return self.answer(404, '{"error":"No load balancer metadata is found. Check if your virtual '
                                        'machine is using any nonbasic SKU load balancer and retry later."}',
                                   json_type, note)
            body = ('{"loadbalancer":{"publicIpAddresses":[{"frontendIpAddress":"%s","privateIpAddress":"%s"}],'
                    '"inboundRules":[],"outboundRules":[]}}' % (args.azure_lb_public_ip, args.private_ip))
            return self.answer(200, self.item_body(body) if args.garbage in ("body", "binary", "huge", "empty")
                               else body, json_type, note)
        return self.answer(404, '{"error":"Not found"}', json_type, note)

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

    # Nova's metadata API (nova/api/metadata/handler.py and base.py; docs/platform.md): the
    # same answer for every method, no session tokens (so PUT /latest/api/token is an
    # unknown path: 404), the EC2-compatible items as plain text, and public-ipv4 empty
    # when the instance has no floating IP.
    def cloud_openstack(self):
        path = posixpath.normpath(self.path.split("?")[0])
        text = {"Content-Type": "text/plain; charset=UTF-8"}
        versions = ["1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                    "2008-09-01", "2009-04-04", "latest"]
        if path == "/":
            return self.answer(200, "\n".join(versions), text)
        if path == "/openstack":
            return self.answer(200, "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n"
                                    "2017-02-22\n2018-08-27\n2020-10-14\nlatest", text)
        if path == "/openstack/latest/meta_data.json":
            body = ('{"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "hostname": "agent-1.novalocal", '
                    '"name": "agent-1", "launch_index": 0, "availability_zone": "nova", '
                    '"project_id": "f7ac731cc11f40efbc03a9f9e1d1d21f"}')
            return self.answer(200, body, {"Content-Type": "application/json"})
        items = {"local-ipv4": args.private_ip, "public-ipv4": args.public_ip,
                 "hostname": "agent-1.novalocal", "instance-id": "i-00000004"}
        for version in versions:
            prefix = f"/{version}/meta-data/"
            if path.startswith(prefix) and path[len(prefix):] in items:
                value = items[path[len(prefix):]]
                return self.answer(200, self.item_body(value) if value else b"", text)
        return self.answer(404, "404 Not Found\n\nThe resource could not be found.\n\n   ", text)

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
