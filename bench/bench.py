#!/usr/bin/env python3
"""switchboard's benchmark suite: each workload side by side with the server people would
otherwise use, on this machine, in this run.

Every server is pinned to CPU 0 and every load generator to CPU 1. The servers of one
workload run at the same time (the idle ones cost nothing) and take turns under load, round
after round (A B A B ...), so that a change in the machine's speed during the run hits both
alike. Each figure is the median of the rounds; each ratio is switchboard's median over the
peer's. Every round's raw number is written to the JSON file next to the table.

Run it with `bench/run` (which installs the peers and builds switchboard); `bench/run --help`
lists the options. See bench/README.md for what each workload means.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"  # --profile debug changes it, for the smoke run
SERVER_CPU = "0"
LOAD_CPU = "1"
# File descriptors for the idle-connection workload: connections, plus room to spare.
FD_LIMIT = 40_000


# ----------------------------------------------------------------------------------------
# Settings: the full run and the seconds-long smoke that CI runs so the suite cannot rot.


@dataclass
class Settings:
    rounds: int
    seconds: float  # each measured load run
    warmup: float  # an unmeasured run before the first round
    smtp_messages: int
    idle_connections: int
    startups: int
    counted_requests: int  # requests per callgrind run

    @staticmethod
    def full() -> "Settings":
        return Settings(rounds=5, seconds=5, warmup=2, smtp_messages=20_000,
                        idle_connections=10_000, startups=20, counted_requests=20_000)

    @staticmethod
    def smoke() -> "Settings":
        return Settings(rounds=1, seconds=1, warmup=0.5, smtp_messages=200,
                        idle_connections=200, startups=2, counted_requests=200)


# ----------------------------------------------------------------------------------------
# Small helpers.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a load generator on the load CPU; its output, or an error naming the command."""
    full = ["taskset", "-c", LOAD_CPU, *cmd]
    done = subprocess.run(full, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({done.returncode}):\n"
                         f"{done.stdout}\n{done.stderr}")
    return done


def wait_for_port(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"bench: nothing answered on port {port} within {deadline}s")


def rss_kib(pids: list[int]) -> int:
    """Resident memory of these processes, summed (nginx is a master and a worker)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pids: list[int], *, children: bool = False) -> float:
    """CPU time (user and system, every thread) these processes have used so far; with
    `children`, also that of the child processes they have reaped (socat forks one per
    connection)."""
    ticks = 0
    for pid in pids:
        # The command name may hold spaces; the fields after its closing parenthesis do not.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if children:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_fd_limit() -> None:
    """For ourselves and, inherited, for every server we start."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FD_LIMIT if hard == resource.RLIM_INFINITY else max(hard, FD_LIMIT)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, PermissionError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def version_of(cmd: list[str], line_with: str = "") -> str:
    """The first line of the command's output (that holds `line_with`)."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = [line for line in (done.stdout + done.stderr).strip().splitlines() if line_with in line]
    return text[0] if text else "unknown"


# ----------------------------------------------------------------------------------------
# The servers.


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    ports: dict[str, int]
    pids: list[int] = field(default_factory=list)  # whose memory counts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def pinned(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", SERVER_CPU, *cmd]


def start_switchboard(work: Path, certs: Path, *, max_messages: int) -> Server:
    ports = {"http": free_port(), "https": free_port(), "smtp": free_port()}
    config = work / "switchboard.toml"
    config.write_text(
        "".join(f'[[port]]\nport = {port}\nservice = "{service}"\n\n'
                for service, port in ports.items())
        + "[supervisor]\nmax_connections = 30000\n\n"
        + f"[mail]\nmax_messages = {max_messages}\n"
    )
    log = open(work / "switchboard.log", "w")
    process = subprocess.Popen(
        pinned([str(RELEASE / "switchboard"), "serve", "--config", str(config),
                "--bind", "127.0.0.1", "--certs", str(certs)]),
        stdout=log, stderr=subprocess.STDOUT)
    for port in ports.values():
        wait_for_port(port)
    return Server("switchboard", process, ports, [process.pid])


def start_baseline(work: Path, certs: Path, *, app: bool = False) -> Server:
    """A bare hyper server answering `ok`; with `app`, switchboard's HTTP app bound directly
    (no supervisor in front of it)."""
    name = "app alone" if app else "bare hyper"
    ports = {"http": free_port(), "https": free_port()}
    log = open(work / f"baseline{'-app' if app else ''}.log", "w")
    process = subprocess.Popen(
        pinned([str(RELEASE / "switchboard-baseline"),
                "--http", f"127.0.0.1:{ports['http']}", "--https", f"127.0.0.1:{ports['https']}",
                "--cert", str(certs / "server.pem"), "--key", str(certs / "server-key.pem"),
                *(["--app"] if app else [])]),
        stdout=log, stderr=subprocess.STDOUT)
    for port in ports.values():
        wait_for_port(port)
    return Server(name, process, ports, [process.pid])


NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile {fd_limit};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections {fd_limit}; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{http};
        listen 127.0.0.1:{https} ssl http2;
        ssl_certificate {certs}/server.pem;
        ssl_certificate_key {certs}/server-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}
    # The handshake rows' port: its log line per connection says whether the TLS session
    # was resumed ("r") or new ("."), to check which handshakes a row really measured.
    log_format resumed '$ssl_session_reused';
    server {{
        listen 127.0.0.1:{https_counted} ssl;
        access_log {work}/nginx-resumed.log resumed;
        ssl_certificate {certs}/server.pem;
        ssl_certificate_key {certs}/server-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}
}}
"""


def start_nginx(work: Path, certs: Path) -> Server:
    ports = {"http": free_port(), "https": free_port(), "https_counted": free_port()}
    (work / "nginx-tmp").mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, certs=certs, fd_limit=FD_LIMIT // 2, **ports))
    process = subprocess.Popen(pinned(["nginx", "-c", str(conf), "-p", str(work)]),
                               stdout=open(work / "nginx.log", "w"), stderr=subprocess.STDOUT)
    for port in ports.values():
        wait_for_port(port)
    worker = _nginx_worker(process.pid)
    return Server("nginx", process, ports, [process.pid, worker])


def _nginx_worker(master: int) -> int:
    for _ in range(500):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise SystemExit("bench: nginx started no worker")


def start_smtp_sink(work: Path) -> Server:
    port = free_port()
    args = ["smtp-sink"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]  # smtp-sink refuses to run as root
    process = subprocess.Popen(pinned([*args, f"127.0.0.1:{port}", "1024"]),
                               stdout=open(work / "smtp-sink.log", "w"), stderr=subprocess.STDOUT)
    wait_for_port(port)
    return Server("smtp-sink", process, {"smtp": port}, [process.pid])


# ----------------------------------------------------------------------------------------
# Load generators: each returns one number, higher is better.


def wrk(url: str, seconds: float, connections: int, *, close: bool = False) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    out = run(cmd).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rate or errors:
        raise SystemExit(f"bench: wrk on {url} did not get clean answers:\n{out}")
    return float(rate.group(1))


def h2load(url: str, seconds: float, *, connections: int = 16, streams: int = 16) -> float:
    out = run(["h2load", "-t1", f"-c{connections}", f"-m{streams}",
               f"-D{max(1, round(seconds))}", url]).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    failed = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed",
                       out)
    if not rate or not status or int(status.group(1)) == 0 or (failed and int(failed.group(1))):
        raise SystemExit(f"bench: h2load on {url} did not get clean answers:\n{out}")
    return float(rate.group(1))


def s_time(port: int, seconds: float, *, reuse: bool) -> float:
    """New TLS connections a second from `openssl s_time`, one at a time, each fetching
    /healthz: with `reuse`, every connection offers the session of the one before (the
    client's side of resumption); without, none does, so every handshake is a full one."""
    began = time.perf_counter()
    out = run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-www", "/healthz",
               "-time", str(max(1, round(seconds))), "-reuse" if reuse else "-new"]).stdout
    elapsed = time.perf_counter() - began
    done = re.findall(r"(\d+) connections in [\d.]+ real seconds", out)
    if not done:
        raise SystemExit(f"bench: openssl s_time on port {port} printed no count:\n{out}")
    return int(done[-1]) / elapsed


def wrk_transfer(url: str, seconds: float) -> float:
    """MB/s that one keep-alive connection carries, fetching `url` over and over."""
    out = run(["wrk", "-t1", "-c1", f"-d{max(1, round(seconds))}s", url]).stdout
    rate = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    if not rate or re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"bench: wrk on {url} did not get clean answers:\n{out}")
    # wrk's units are binary (1 KB = 1024 bytes); the answer is in its MB.
    scale = {"B": 1 / 1024 ** 2, "KB": 1 / 1024, "MB": 1, "GB": 1024}
    return float(rate.group(1)) * scale[rate.group(2)]


def smtp_source(port: int, messages: int, *, reuse: bool) -> float:
    """Messages per second for smtp-source sending `messages` of 1 KB over 20 sessions."""
    cmd = ["smtp-source", "-s", "20", "-m", str(messages), "-l", "1024",
           "-f", "bench@source.test", "-t", "sink@switchboard.test"]
    if reuse:
        cmd.append("-d")
    start = time.perf_counter()
    run([*cmd, f"127.0.0.1:{port}"])
    return messages / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------------
# Rounds, medians, ratios.


@dataclass
class Row:
    workload: str
    unit: str
    ours: list[float]
    peer_name: str
    theirs: list[float]
    target: float | None = None  # the least ratio that meets the target
    lower_is_better: bool = False
    # How busy each server's CPU was during each run (1.0 = the whole CPU), for throughput
    # workloads: below ~0.9 the load generator, not the server, set the pace.
    ours_busy: list[float] = field(default_factory=list)
    theirs_busy: list[float] = field(default_factory=list)

    def ratio(self) -> float:
        ours, theirs = statistics.median(self.ours), statistics.median(self.theirs)
        return theirs / ours if self.lower_is_better else ours / theirs

    def efficiency_ratio(self) -> float | None:
        """The ratio of work done per CPU-second of the server: what the throughput ratio
        would be if the load generator could saturate both servers."""
        # A run too short for the kernel's CPU clock to tick for a server shows 0 s busy
        # (smoke runs of a second, on a busy machine): no ratio then, rather than a division
        # by zero.
        if not self.ours_busy or not self.theirs_busy or min(self.ours_busy + self.theirs_busy) <= 0:
            return None
        ours = statistics.median(v / b for v, b in zip(self.ours, self.ours_busy))
        theirs = statistics.median(v / b for v, b in zip(self.theirs, self.theirs_busy))
        return ours / theirs


@dataclass
class Contender:
    pids: list[int]  # whose CPU time counts
    measure: callable  # Settings -> a rate, higher is better
    children: bool = False  # count the CPU time of reaped child processes too


def interleave(settings: Settings, contenders: dict[str, Contender]) -> dict[str, tuple]:
    """Run each contender once per round, in turn, after an unmeasured warm-up run.

    Returns, per contender, the rates and how busy the server's CPU was during each run."""
    if settings.warmup:
        warm = dataclasses.replace(settings, seconds=settings.warmup)
        for contender in contenders.values():
            contender.measure(warm)
    results = {name: ([], []) for name in contenders}
    for _ in range(settings.rounds):
        for name, contender in contenders.items():
            cpu = cpu_seconds(contender.pids, children=contender.children)
            wall = time.perf_counter()
            rate = contender.measure(settings)
            busy = ((cpu_seconds(contender.pids, children=contender.children) - cpu)
                    / (time.perf_counter() - wall))
            results[name][0].append(rate)
            results[name][1].append(busy)
    return results


def compare(workload: str, unit: str, got: dict[str, tuple], peer: str,
            target: float | None = None) -> Row:
    return Row(workload, unit, got["switchboard"][0], peer, got[peer][0], target=target,
               ours_busy=got["switchboard"][1], theirs_busy=got[peer][1])


def api_total(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/messages?limit=1") as r:
        return json.load(r)["total"]


def api_delete_all(port: int) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/messages", method="DELETE")
    urllib.request.urlopen(request).close()


# ----------------------------------------------------------------------------------------
# The workloads.


def http_workloads(settings: Settings, work: Path, certs: Path) -> list[Row]:
    ours = start_switchboard(work, certs, max_messages=1000)
    nginx = start_nginx(work, certs)
    bare = start_baseline(work, certs)
    alone = start_baseline(work, certs, app=True)
    servers = [ours, nginx, bare, alone]
    rows = []
    try:
        def keep_alive(server):
            return Contender(server.pids, lambda s: wrk(
                f"http://127.0.0.1:{server.ports['http']}/healthz", s.seconds, 64))

        got = interleave(settings, {s.name: keep_alive(s) for s in servers})
        rows.append(compare("HTTP/1.1 keep-alive, GET /healthz (wrk, 64 connections)", "req/s",
                            got, "nginx", target=1.05))
        rows.append(compare("HTTP/1.1 keep-alive: what the supervisor's dispatch costs "
                            "(against the same HTTP app bound directly)", "req/s", got,
                            "app alone", target=0.97))
        rows.append(compare("HTTP/1.1 keep-alive: what switchboard costs over bare hyper",
                            "req/s", got, "bare hyper"))

        def h2(server):
            return Contender(server.pids, lambda s: h2load(
                f"https://127.0.0.1:{server.ports['https']}/healthz", s.seconds))

        got = interleave(settings, {s.name: h2(s) for s in servers})
        rows.append(compare("HTTP/2 over TLS (h2load, 16 connections × 16 streams)", "req/s",
                            got, "nginx", target=1.8))
        rows.append(compare("HTTP/2 over TLS: what the supervisor's dispatch costs", "req/s",
                            got, "app alone"))
        rows.append(compare("HTTP/2 over TLS: what switchboard costs over bare hyper", "req/s",
                            got, "bare hyper"))

        def handshakes(server):
            return Contender(server.pids, lambda s: wrk(
                f"https://127.0.0.1:{server.ports['https']}/healthz", s.seconds, 32, close=True))

        got = interleave(settings, {s.name: handshakes(s) for s in servers})
        rows.append(compare("New TLS connections, one request each (wrk, 32 connections)",
                            "conn/s", got, "nginx", target=1.8))
        rows.append(compare("New TLS connections: what the supervisor's dispatch costs",
                            "conn/s", got, "app alone"))
        rows.append(compare("New TLS connections: what switchboard costs over bare hyper",
                            "conn/s", got, "bare hyper"))
    finally:
        for server in servers:
            server.stop()
    return rows


def handshake_counts(server: Server, work: Path) -> tuple[int, int]:
    """(handshakes, resumed) the server itself has counted so far."""
    if server.name == "nginx":
        lines = (work / "nginx-resumed.log").read_text().split()
        return len(lines), lines.count("r")
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ports['http']}/metrics") as r:
        text = r.read().decode()

    def total(name: str) -> int:
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                   if line.startswith(name + "{") and f'port="{server.ports["https"]}"' in line)
    return total("switchboard_tls_handshakes_total"), total("switchboard_tls_handshakes_resumed_total")


def tls_workloads(settings: Settings, work: Path, certs: Path) -> list[Row]:
    """New TLS connections from `openssl s_time`: full handshakes, then resumed ones, each
    checked against the servers' own counts of what they did."""
    ours = start_switchboard(work, certs, max_messages=1000)
    nginx = start_nginx(work, certs)
    port = {"switchboard": ours.ports["https"], "nginx": nginx.ports["https_counted"]}
    rows = []
    try:
        for reuse, what in ((False, "full handshakes"), (True, "one session resumed each time")):
            before = {s.name: handshake_counts(s, work) for s in (ours, nginx)}
            got = interleave(settings, {s.name: Contender(s.pids, lambda t, p=port[s.name],
                                                          r=reuse: s_time(p, t.seconds, reuse=r))
                                        for s in (ours, nginx)})
            checked = []
            runs = settings.rounds + (1 if settings.warmup else 0)
            for server in (ours, nginx):
                total, resumed = (a - b for a, b in zip(handshake_counts(server, work),
                                                        before[server.name]))
                # Reusing, each s_time run's first connection is a full handshake (it has no
                # session yet) and every later one must resume; otherwise none may.
                if total == 0 or resumed != (total - runs if reuse else 0):
                    raise SystemExit(f"bench: {server.name} resumed {resumed} of {total} "
                                     f"handshakes in the {what} row")
                checked.append(f"{server.name} {resumed} of {total}")
            rows.append(compare(f"New TLS connections, {what} (openssl s_time; resumed, by "
                                f"the servers' counts: {', '.join(checked)})",
                                "conn/s", got, "nginx", target=1.8))
    finally:
        ours.stop()
        nginx.stop()
    return rows


def smtp_workloads(settings: Settings, work: Path, certs: Path) -> list[Row]:
    ours = start_switchboard(work, certs, max_messages=settings.smtp_messages * 2)
    sink = start_smtp_sink(work)
    rows = []
    try:
        for reuse, label in [(False, "a new connection per message"),
                             (True, "connections reused (-d)")]:
            def switchboard(s, reuse=reuse):
                before = api_total(ours.ports["http"])
                rate = smtp_source(ours.ports["smtp"], s.smtp_messages, reuse=reuse)
                captured = api_total(ours.ports["http"]) - before
                if captured != s.smtp_messages:
                    raise SystemExit(f"bench: sent {s.smtp_messages} messages, "
                                     f"the API shows {captured}")
                api_delete_all(ours.ports["http"])
                return rate

            def smtp_sink(s, reuse=reuse):
                return smtp_source(sink.ports["smtp"], s.smtp_messages, reuse=reuse)

            quick = dataclasses.replace(settings, warmup=0)
            got = interleave(quick, {"switchboard": Contender(ours.pids, switchboard),
                                     "smtp-sink": Contender(sink.pids, smtp_sink)})
            rows.append(compare(f"SMTP, {settings.smtp_messages} messages of 1 KB over 20 "
                                f"sessions, {label}; every message captured", "msg/s",
                                got, "smtp-sink", target=1.0))
    finally:
        ours.stop()
        sink.stop()
    return rows


UPSTREAM_CONF = """\
worker_processes 1;
daemon off;
pid {work}/upstream.pid;
error_log {work}/upstream-error.log warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {work}/upstream;
    }}
}}
"""

HAPROXY_CONF = """\
global
    maxconn 5000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend proxy
    bind 127.0.0.1:{port}
    default_backend upstream
backend upstream
    server nginx 127.0.0.1:{upstream}
"""


def proxy_workloads(settings: Settings, work: Path, certs: Path) -> list[Row]:
    """A TCP proxy in front of nginx serving static files: MB/s through one keep-alive
    connection (an 8 MB file over and over) and new connections per second (a 2-byte file,
    one request each). The upstream nginx shares the load CPU with wrk; each proxy has the
    server CPU. socat forks a process per connection, whose CPU time counts once reaped."""
    root = work / "upstream"
    root.mkdir(exist_ok=True)
    (root / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    (root / "small.txt").write_text("ok")
    upstream_port = free_port()
    conf = work / "upstream.conf"
    conf.write_text(UPSTREAM_CONF.format(work=work, port=upstream_port))
    upstream = subprocess.Popen(["taskset", "-c", LOAD_CPU, "nginx", "-c", str(conf), "-p", str(work)],
                                stdout=open(work / "upstream.log", "w"), stderr=subprocess.STDOUT)
    wait_for_port(upstream_port)

    ours_port, haproxy_port, socat_port = free_port(), free_port(), free_port()
    config = work / "proxy.toml"
    config.write_text(f'[[port]]\nport = {ours_port}\nservice = "proxy"\n'
                      f'upstream = "127.0.0.1:{upstream_port}"\n\n'
                      "[supervisor]\nmax_connections = 30000\n")
    ours = subprocess.Popen(pinned([str(RELEASE / "switchboard"), "serve", "--config", str(config),
                                    "--bind", "127.0.0.1", "--certs", str(certs)]),
                            stdout=open(work / "proxy-switchboard.log", "w"), stderr=subprocess.STDOUT)
    (work / "haproxy.cfg").write_text(HAPROXY_CONF.format(port=haproxy_port, upstream=upstream_port))
    haproxy = subprocess.Popen(pinned(["haproxy", "-db", "-f", str(work / "haproxy.cfg")]),
                               stdout=open(work / "haproxy.log", "w"), stderr=subprocess.STDOUT)
    socat = subprocess.Popen(pinned(["socat", f"TCP-LISTEN:{socat_port},bind=127.0.0.1,fork,reuseaddr,backlog=1024",
                                     f"TCP:127.0.0.1:{upstream_port}"]))
    servers = [ours, haproxy, socat]
    try:
        for port in (ours_port, haproxy_port, socat_port):
            wait_for_port(port)
        ports = {"switchboard": ours_port, "HAProxy": haproxy_port, "socat": socat_port}
        pids = {"switchboard": [ours.pid], "HAProxy": [haproxy.pid], "socat": [socat.pid]}

        def contender(name, measure):
            def run_and_settle(s):
                rate = measure(s)
                if name == "socat":
                    time.sleep(0.3)  # let socat reap its children, so their CPU time counts
                return rate
            return Contender(pids[name], run_and_settle, children=name == "socat")

        rows = []
        got = interleave(settings, {name: contender(name, lambda s, p=port: wrk_transfer(
            f"http://127.0.0.1:{p}/big.bin", s.seconds)) for name, port in ports.items()})
        for peer in ("HAProxy", "socat"):
            rows.append(compare("TCP proxy: MB/s through one keep-alive connection "
                                "(wrk, an 8 MB file from nginx)", "MB/s", got, peer))
        got = interleave(settings, {name: contender(name, lambda s, p=port: wrk(
            f"http://127.0.0.1:{p}/small.txt", s.seconds, 16, close=True))
            for name, port in ports.items()})
        for peer in ("HAProxy", "socat"):
            rows.append(compare("TCP proxy: new connections, one request each (wrk, 16 connections)",
                                "conn/s", got, peer))
        return rows
    finally:
        for process in [*servers, upstream]:
            Server("", process, {}).stop()


def mailbox_workloads(settings: Settings, work: Path, certs: Path) -> list[Row]:
    """The mailbox's list (the first page of 50, newest first, as /mail asks for it) with a
    full store against a nearly empty one: what a long-running rig's mail costs the list."""
    full_count = 10_000 if settings.rounds > 1 else 1_000
    small = start_switchboard(work, certs, max_messages=full_count)
    full = start_switchboard(work, certs, max_messages=full_count)
    try:
        for server, count in [(small, 100), (full, full_count)]:
            smtp_source(server.ports["smtp"], count, reuse=True)
            if api_total(server.ports["http"]) != count:
                raise SystemExit(f"bench: loaded {count} messages, the API shows otherwise")

        def listing(server):
            url = f"http://127.0.0.1:{server.ports['http']}/api/v1/messages?start=0&limit=50"
            return lambda s: wrk(url, s.seconds, 16)

        got = interleave(settings, {"switchboard": Contender(full.pids, listing(full)),
                                    "100 messages": Contender(small.pids, listing(small))})
        return [compare(f"Mailbox list, first page of 50 (wrk, 16 connections): "
                        f"{full_count} messages stored against 100", "req/s", got,
                        "100 messages")]
    finally:
        small.stop()
        full.stop()


def instruction_workloads(settings: Settings, work: Path, certs: Path) -> list[Row]:
    """Instructions per request, counted by callgrind (bench/instructions). Rates on a shared
    machine move by ±15% between runs a few seconds apart, which hides a difference of a few
    percent; instruction counts repeat to within about 1%."""

    def count(server: str, mode: str, *path: str) -> float:
        cmd = [str(ROOT / "bench" / "instructions"), server, mode, str(settings.counted_requests),
               *path]
        done = subprocess.run(cmd, capture_output=True, text=True,
                              env=os.environ | {"BUILD": RELEASE.name})
        found = re.search(r"(\d+) per request", done.stdout)
        if done.returncode != 0 or not found:
            raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
        return float(found.group(1))

    rows = []
    for mode, label in [("h1", "HTTP/1.1 keep-alive"), ("h2", "HTTP/2 over TLS")]:
        got = {server: count(server, mode) for server in ["switchboard", "app", "baseline"]}
        rows.append(Row(f"Instructions per request, {label} (callgrind): what the supervisor's "
                        "dispatch costs", "instructions", [got["switchboard"]], "app alone",
                        [got["app"]], target=0.97, lower_is_better=True))
        rows.append(Row(f"Instructions per request, {label}: what switchboard costs over bare "
                        "hyper", "instructions", [got["switchboard"]], "bare hyper",
                        [got["baseline"]], lower_is_better=True))
        if mode == "h1":
            healthz = got["switchboard"]
    # Every route, not only the cheapest: httpbin's echo, and a WireMock-style stub.
    echo = count("switchboard", "h1", "/get")
    rows.append(Row("Instructions per request, HTTP/1.1 keep-alive: GET /get (httpbin's echo) "
                    "against GET /healthz", "instructions", [echo], "/healthz", [healthz],
                    lower_is_better=True))
    rows.append(Row("Instructions per request, HTTP/1.1 keep-alive: a matched stub (stubs port) "
                    "against GET /get", "instructions", [count("switchboard", "stub")], "/get",
                    [echo], lower_is_better=True))
    # SMTP per message (smtp-source, 1 KB messages, every one captured): the target is on the
    # count itself; the peer row shows what a connection per message adds.
    rows.append(Row("Instructions per message, SMTP with connections reused (callgrind): "
                    "against a new connection per message", "instructions",
                    [count("switchboard", "smtp-reused")], "new connection per message",
                    [count("switchboard", "smtp")], lower_is_better=True))
    return rows


def hold_idle(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        held.append(s)
    return held


def memory_workloads(settings: Settings, work: Path, certs: Path) -> tuple[list[Row], dict]:
    """Idle memory, and memory holding many idle connections (each server alone)."""
    raw: dict[str, dict[str, int]] = {}
    for start in (lambda: start_switchboard(work, certs, max_messages=1000),
                  lambda: start_nginx(work, certs)):
        server = start()
        try:
            time.sleep(0.5)  # let start-up allocations settle before reading idle memory
            idle = rss_kib(server.pids)
            listener_pid = server.pids[-1]
            base_fds = open_fds(listener_pid)
            held = hold_idle(server.ports["http"], settings.idle_connections)
            end = time.monotonic() + 30
            while open_fds(listener_pid) < base_fds + len(held) and time.monotonic() < end:
                time.sleep(0.05)
            accepted = open_fds(listener_pid) - base_fds
            if accepted < len(held):
                raise SystemExit(f"bench: {server.name} accepted {accepted} of {len(held)}")
            holding = rss_kib(server.pids)
            for s in held:
                s.close()
            raw[server.name] = {"idle_kib": idle, "holding_kib": holding,
                                "connections": len(held)}
        finally:
            server.stop()
    ours, nginx = raw["switchboard"], raw["nginx"]
    n = settings.idle_connections

    def per_conn(r):
        return (r["holding_kib"] - r["idle_kib"]) * 1024 / n

    rows = [
        Row("Memory idle (RSS)", "MB", [ours["idle_kib"] / 1024], "nginx",
            [nginx["idle_kib"] / 1024], lower_is_better=True),
        Row(f"Memory holding {n} idle connections (RSS)", "MB", [ours["holding_kib"] / 1024],
            "nginx", [nginx["holding_kib"] / 1024], lower_is_better=True),
        Row("Memory per idle connection", "bytes", [per_conn(ours)], "nginx",
            [per_conn(nginx)], lower_is_better=True),
    ]
    return rows, raw


def startup_workload(settings: Settings, work: Path, certs: Path) -> list[Row]:
    """Milliseconds from exec until every port accepts a connection (certificates present)."""

    def measure(start_cmd: list[str], ports: list[int]) -> float:
        began = time.perf_counter()
        process = subprocess.Popen(start_cmd, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        waiting = set(ports)
        try:
            while waiting:
                for port in list(waiting):
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        waiting.discard(port)
                    except ConnectionRefusedError:
                        pass
                if process.poll() is not None:
                    raise SystemExit(f"bench: {start_cmd[3]} exited during start-up")
                if time.perf_counter() - began > 10:
                    raise SystemExit(f"bench: {start_cmd[3]} not listening after 10 s")
            return (time.perf_counter() - began) * 1000
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait()

    # The same ports every time, and one start before the measured ones: the server
    # certificate names the HTTP port in its revocation list address, so a new HTTP port
    # renews it (a new key, files written and synced: tens of milliseconds here). Measured is a start
    # with its certificates present and current, as nginx's are.
    ours_ports = [free_port(), free_port(), free_port()]
    ours_config = work / "startup.toml"
    ours_config.write_text("".join(f'[[port]]\nport = {p}\nservice = "{svc}"\n\n'
                                   for p, svc in zip(ours_ports, ["http", "https", "smtp"])))
    ours_cmd = pinned([str(RELEASE / "switchboard"), "serve", "--config", str(ours_config),
                       "--bind", "127.0.0.1", "--certs", str(certs)])
    measure(ours_cmd, ours_ports)

    def ours(_s):
        return measure(ours_cmd, ours_ports)

    def nginx(_s):
        ports = {"http": free_port(), "https": free_port()}
        conf = work / "nginx-startup.conf"
        conf.write_text(NGINX_CONF.format(work=work, certs=certs, fd_limit=1024,
                                          https_counted=free_port(), **ports))
        return measure(pinned(["nginx", "-c", str(conf), "-p", str(work)]),
                       list(ports.values()))

    times = dataclasses.replace(settings, rounds=settings.startups, warmup=0)
    got = interleave(times, {"switchboard": Contender([], ours), "nginx": Contender([], nginx)})
    return [Row("Start-up: exec until every port accepts (switchboard: 3 ports, nginx: 2)",
                "ms", got["switchboard"][0], "nginx", got["nginx"][0], lower_is_better=True)]


# ----------------------------------------------------------------------------------------
# The report.

TARGETS = {  # absolute targets, checked against switchboard's median
    "Memory idle (RSS)": ("≤ 10 MB", lambda v: v <= 10),
    "Memory holding": ("≤ 100 MB", lambda v: v <= 100),
    "Start-up": ("< 50 ms", lambda v: v < 50),
    "Instructions per message, SMTP": ("≤ 30 000", lambda v: v <= 30_000),
}


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "memory": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "switchboard": commit,
        "rustc": version_of(["rustc", "--version"]),
        "nginx": version_of(["nginx", "-v"]),
        "wrk": version_of(["wrk", "-v"]),
        "h2load": version_of(["h2load", "--version"]),
        "postfix (smtp-source, smtp-sink)": version_of(["postconf", "-d", "mail_version"]),
        "haproxy": version_of(["haproxy", "-v"]),
        "socat": version_of(["socat", "-V"], line_with="socat version"),
    }


def fmt(value: float, unit: str) -> str:
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:,.0f} {unit}".replace(",", " ")


def busy(samples: list[float]) -> str:
    return f" (CPU {statistics.median(samples) * 100:.0f}%)" if samples else ""


def verdict(row: Row) -> tuple[str, str]:
    for prefix, (text, holds) in TARGETS.items():
        if row.workload.startswith(prefix):
            return text, "yes" if holds(statistics.median(row.ours)) else "**no**"
    if row.target is None:
        return "", ""
    if row.target < 1:
        more = "more" if row.unit == "instructions" else "slower"
        overhead = f"≤ {round((1 - row.target) * 100)}% {more}"
        return overhead, "yes" if row.ratio() >= row.target else "**no**"
    return f"≥ {row.target}×", "yes" if row.ratio() >= row.target else "**no**"


def report(rows: list[Row], facts: dict[str, str], settings: Settings, when: str) -> str:
    lines = [
        f"Measured {when}: {settings.rounds} interleaved rounds of {settings.seconds:g} s "
        "per contender (medians); servers pinned to CPU 0, load generators to CPU 1.",
        "",
        "| workload | switchboard | peer | ratio | per CPU-second | target | holds |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        ours = fmt(statistics.median(row.ours), row.unit) + busy(row.ours_busy)
        theirs = (f"{row.peer_name}: {fmt(statistics.median(row.theirs), row.unit)}"
                  + busy(row.theirs_busy))
        efficiency = row.efficiency_ratio()
        per_cpu = f"{efficiency:.2f}×" if efficiency else ""
        target, holds = verdict(row)
        lines.append(f"| {row.workload} | {ours} | {theirs} | {row.ratio():.2f}× | {per_cpu} | "
                     f"{target} | {holds} |")
    lines += [
        "",
        "Ratios are switchboard's figure over the peer's, better above 1× (for memory and "
        "start-up: the peer's over switchboard's). The percentage after a rate is how busy "
        "that server's CPU was; where it is well below 100%, the load generator set the pace "
        "and \"per CPU-second\" (requests or messages per second of the server's CPU time) "
        "says more about the server than the rate does. Instructions per request are "
        f"callgrind's count over {settings.counted_requests} requests on 16 connections "
        f"(SMTP: {settings.counted_requests} messages over 20 sessions), start-up included. "
        "Targets are checked on the ratio, or where they name a figure, on switchboard's.",
        "", "Machine:", ""]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    return "\n".join(lines) + "\n"


def replace_between_markers(path: Path, text: str) -> None:
    """Put `text` between the file's `<!-- bench:start -->` and `<!-- bench:end -->`."""
    content = path.read_text()
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    if start not in content or end not in content:
        raise SystemExit(f"bench: {path} lacks the <!-- bench:start/end --> markers")
    before, rest = content.split(start, 1)
    _, after = rest.split(end, 1)
    path.write_text(before + start + text + end + after)


def headline(rows: list[Row], when: str) -> str:
    """One sentence of headline ratios for the project's README."""
    def find(prefix: str, peer: str) -> Row | None:
        return next((r for r in rows if r.workload.startswith(prefix) and r.peer_name == peer),
                    None)
    parts = []
    for prefix, peer, words in [
        ("HTTP/1.1 keep-alive, GET", "nginx", "nginx's requests per second on HTTP/1.1"),
        ("HTTP/2 over TLS (", "nginx", "on HTTP/2 over TLS"),
        ("SMTP, ", "smtp-sink", "smtp-sink's rate for mail, keeping every message"),
    ]:
        row = find(prefix, peer)
        if row:
            parts.append(f"{row.ratio():.2f}× {words}")
    start = find("Start-up", "nginx")
    idle = find("Memory idle", "nginx")
    text = f"On the last full run ({when}), switchboard made " + ", ".join(parts)
    if start and idle:
        text += (f"; it starts in {fmt(statistics.median(start.ours), start.unit)} and idles in "
                 f"{fmt(statistics.median(idle.ours), idle.unit)}")
    return text + ". Every figure, its peer and its target: [bench/README.md](bench/README.md).\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="seconds-long runs that check the suite works (CI); no README "
                             "update; the numbers mean nothing")
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 5)")
    parser.add_argument("--seconds", type=float, help="seconds per measured run (default 5)")
    parser.add_argument("--only", default="http,tls,instructions,smtp,mailbox,memory,startup,proxy",
                        help="comma-separated workload groups: http, tls, instructions, smtp, "
                             "mailbox, memory, startup, proxy")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the table and raw numbers go (default: bench/results, "
                             "or target/bench for --smoke)")
    parser.add_argument("--profile", choices=["release", "debug"], default="release",
                        help="which build of switchboard to run (bench/run passes debug with "
                             "--smoke)")
    args = parser.parse_args()
    global RELEASE
    RELEASE = ROOT / "target" / args.profile

    settings = Settings.smoke() if args.smoke else Settings.full()
    if args.rounds:
        settings.rounds = args.rounds
    if args.seconds:
        settings.seconds = args.seconds
    out = args.out or (ROOT / "target" / "bench" if args.smoke else ROOT / "bench" / "results")
    out.mkdir(parents=True, exist_ok=True)
    if os.cpu_count() < 2:
        raise SystemExit("bench: needs two CPUs (one for the server, one for the load)")
    for tool in ["wrk", "h2load", "nginx", "smtp-source", "smtp-sink", "taskset", "valgrind",
                 "haproxy", "socat", "openssl"]:
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} not found; bench/run installs it")
    raise_fd_limit()

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    groups = args.only.split(",")
    rows: list[Row] = []
    extra = {}
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        work = Path(tmp)
        certs = work / "certs"
        subprocess.run([str(RELEASE / "switchboard"), "certs", "--dir", str(certs)],
                       check=True, capture_output=True)
        os.chmod(work, 0o755)  # nginx's worker (nobody) reads nothing here, but may stat it
        steps = {"http": http_workloads, "tls": tls_workloads,
                 "instructions": instruction_workloads,
                 "smtp": smtp_workloads, "mailbox": mailbox_workloads,
                 "startup": startup_workload, "proxy": proxy_workloads}
        for group in groups:
            print(f"bench: {group} …", file=sys.stderr, flush=True)
            if group == "memory":
                got, extra["memory"] = memory_workloads(settings, work, certs)
                rows += got
            elif group in steps:
                rows += steps[group](settings, work, certs)
            else:
                raise SystemExit(f"bench: unknown workload group {group!r}; "
                                 "choose from http, tls, instructions, smtp, mailbox, memory, "
                                 "startup, proxy")

    facts = machine()
    table = report(rows, facts, settings, when)
    (out / "latest.md").write_text(table)
    raw = {"when": when, "settings": settings.__dict__, "machine": facts, "extra": extra,
           "rows": [row.__dict__ | {"ratio": row.ratio(),
                                    "per_cpu_second_ratio": row.efficiency_ratio()}
                    for row in rows]}
    (out / "latest.json").write_text(json.dumps(raw, indent=2) + "\n")
    print(table)
    if not args.smoke and groups == ["http", "tls", "instructions", "smtp", "mailbox",
                                     "memory", "startup", "proxy"]:
        replace_between_markers(ROOT / "bench" / "README.md", table)
        replace_between_markers(ROOT / "README.md", headline(rows, when))
        print("bench: bench/README.md and README.md updated", file=sys.stderr)


if __name__ == "__main__":
    main()
