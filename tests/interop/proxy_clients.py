#!/usr/bin/env python3
"""Interop: switchboard's proxy between real clients and real servers.

Redis (redis-server, with redis-cli as the client) behind a proxy row of the config file:
commands and a megabyte value cross exactly, a latency toxic on the upstream direction slows
each command, and a Redis that goes away closes the client's connection at once. Python's
http.server behind a proxy added at run time (POST /api/ports): a file arrives byte for
byte, and after DELETE /api/ports/{port} the kernel refuses.

Usage: proxy_clients.py path/to/switchboard
Run by .ci/run; needs redis-server and redis-cli (Debian's redis-server, redis-tools).
"""

import functools
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from harness import PATIENCE, check, run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port):
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if cli(port, "PING").stdout.strip() == "PONG":
            return redis
        time.sleep(0.05)
    raise SystemExit("redis-server did not answer PING")


def cli(port, *args, stdin=None):
    return subprocess.run(["redis-cli", "-p", str(port), *args], input=stdin,
                          capture_output=True, text=True, timeout=PATIENCE)


def control(sb, method, path, body=None):
    request = urllib.request.Request(
        f"http://{sb.addrs['http']}{path}", method=method,
        data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def redis_behind_the_proxy(sb, redis, redis_port):
    proxy = sb.port("proxy")
    check("redis-cli SET through the proxy", cli(proxy, "SET", "greeting", "hello").stdout.strip() == "OK")
    check("redis-cli GET through the proxy", cli(proxy, "GET", "greeting").stdout.strip() == "hello")

    value = "".join(chr(ord("a") + i % 26) for i in range(1_000_000))
    cli(proxy, "-x", "SET", "big", stdin=value)
    back = cli(proxy, "--no-raw", "STRLEN", "big").stdout.strip()
    got = cli(proxy, "GET", "big").stdout.rstrip("\n")
    check("a megabyte value crosses both ways exactly", back == "(integer) 1000000" and got == value,
          f"STRLEN {back}, GET {len(got)} characters")

    status, _ = control(sb, "POST", f"/api/ports/{proxy}/toxics",
                        {"type": "latency", "stream": "upstream", "attributes": {"latency": 300}})
    started = time.monotonic()
    pong = cli(proxy, "PING").stdout.strip()
    took = time.monotonic() - started
    check("a 300 ms upstream latency toxic slows a PING by at least that", status == 200 and pong == "PONG"
          and took >= 0.3, f"status {status}, {pong!r} after {took:.3f} s")
    control(sb, "DELETE", f"/api/ports/{proxy}/toxics/latency_upstream")

    redis.terminate()
    redis.wait(timeout=PATIENCE)
    started = time.monotonic()
    gone = cli(proxy, "PING")
    took = time.monotonic() - started
    check("with Redis gone, the client's connection is closed at once", gone.stdout.strip() != "PONG"
          and took < 5, f"{gone.stdout!r} {gone.stderr!r} after {took:.3f} s")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def http_server_behind_a_runtime_proxy(sb):
    with tempfile.TemporaryDirectory() as root:
        body = os.urandom(200_000)
        with open(os.path.join(root, "blob.bin"), "wb") as f:
            f.write(body)
        handler = functools.partial(QuietHandler, directory=root)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        upstream = f"127.0.0.1:{server.server_address[1]}"

        status, row = control(sb, "POST", "/api/ports",
                              {"port": 0, "service": "proxy", "bind": ["127.0.0.1"], "upstream": upstream})
        check("POST /api/ports adds a proxy to http.server (201)", status == 201 and row["upstream"] == upstream,
              f"{status} {row}")
        port = row["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/blob.bin", timeout=PATIENCE) as response:
            got = response.read()
        check("http.server's file arrives through it byte for byte", got == body, f"{len(got)} bytes")

        status, _ = control(sb, "DELETE", f"/api/ports/{port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=PATIENCE).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        check("after DELETE /api/ports/{port} the kernel refuses", status == 204 and refused, status)
        server.shutdown()


def scenario(redis, redis_port):
    def inner(sb):
        redis_behind_the_proxy(sb, redis, redis_port)
        http_server_behind_a_runtime_proxy(sb)
    return inner


if __name__ == "__main__":
    redis_port = free_port()
    redis = start_redis(redis_port)
    try:
        settings = f'[[port]]\nport = 0\nservice = "proxy"\nbind = ["127.0.0.1"]\nupstream = "127.0.0.1:{redis_port}"\n'
        run("proxy interop", scenario(redis, redis_port), services=("http",), settings=settings)
    finally:
        if redis.poll() is None:
            redis.terminate()
