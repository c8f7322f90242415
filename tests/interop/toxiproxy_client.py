#!/usr/bin/env python3
"""Interop: Toxiproxy's Python client (toxiproxy-python, from PyPI) driving switchboard.

The client knows nothing of switchboard: it lists proxies (switchboard's own rows among
them), creates a proxy in front of the echo row, puts toxics on it and on the SMTP row,
takes the proxy down and up, and tears everything down as a test suite's clean-up would;
each effect is checked with a real connection.

Usage: toxiproxy_client.py path/to/switchboard
Run by .ci/run in its virtualenv, with toxiproxy-python installed.
"""

import smtplib
import socket
import time

from toxiproxy import Toxiproxy
from toxiproxy.exceptions import NotFound, ProxyExists

from harness import PATIENCE, check, run


def echoes(address, payload=b"ping"):
    """Whether `address` (host, port) echoes `payload` back; the time it took."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=PATIENCE) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(len(payload) - len(got))
            if not chunk:
                break
            got += chunk
    return got == payload, time.monotonic() - started


def refused(address):
    try:
        socket.create_connection(address, timeout=PATIENCE).close()
        return False
    except ConnectionRefusedError:
        return True


def smtp_greets(port):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=PATIENCE) as smtp:
            return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def address_of(proxy):
    host, port = proxy.listen.rsplit(":", 1)
    return host, int(port)


def scenario(sb):
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", sb.port("toxiproxy"))
    check("the client sees a running server", server.running())
    check("version names Toxiproxy's API version", b'"2.6.0"' in server.version(),
          server.version())

    smtp_port, echo_port = sb.port("smtp"), sb.port("echo")
    proxies = server.proxies()
    smtp_row = proxies.get(f"smtp-{smtp_port}")
    check("switchboard's own rows are proxies named <service>-<port>",
          smtp_row is not None and f"echo-{echo_port}" in proxies, sorted(proxies))
    check("an own row's upstream names its service",
          smtp_row is not None and smtp_row.upstream == "smtp" and smtp_row.enabled)

    proxy = server.create(upstream=sb.addrs["echo"], name="echo_proxy")
    address = address_of(proxy)
    check("create answers with the port the kernel chose", address[1] != 0, proxy.listen)
    ok, _ = echoes(address)
    check("the proxy carries bytes to its upstream and back", ok)
    try:
        server.create(upstream=sb.addrs["echo"], name="echo_proxy")
        check("a second proxy of the same name is refused", False, "no ProxyExists")
    except ProxyExists:
        check("a second proxy of the same name is refused", True)

    proxy.add_toxic(type="latency", attributes={"latency": 300})
    check("the toxic is listed", "latency_downstream" in proxy.toxics(), proxy.toxics())
    ok, took = echoes(address)
    check("a latency toxic slows the answer by at least its latency", ok and took >= 0.3,
          f"{took:.3f} s")
    proxy.destroy_toxic("latency_downstream")
    check("a destroyed toxic is gone", proxy.toxics() == {}, proxy.toxics())
    try:
        proxy.destroy_toxic("latency_downstream")
        check("destroying a missing toxic is NotFound", False, "no exception")
    except NotFound:
        check("destroying a missing toxic is NotFound", True)

    with proxy.down():
        check("a disabled proxy is refused by the kernel", refused(address))
        check("and listed as disabled",
              server.get_proxy("echo_proxy").enabled is False)
    ok, _ = echoes(address)
    check("enabled again, it listens on the same address", ok)

    smtp_row.add_toxic(type="reset_peer", attributes={"timeout": 0})
    check("a toxic on the SMTP row breaks SMTP", not smtp_greets(smtp_port))
    server.reset()
    check("reset removes every toxic", smtp_greets(smtp_port) and smtp_row.toxics() == {})

    # A test suite's tear-down: destroy every proxy, then reset.
    server.destroy_all()
    check("destroy_all removes the proxies made through the API",
          "echo_proxy" not in server.proxies(), sorted(server.proxies()))
    check("and closes switchboard's own rows", refused(("127.0.0.1", smtp_port)))
    server.reset()
    check("reset opens switchboard's own rows again", smtp_greets(smtp_port))
    check("so the table is as it started",
          sorted(server.proxies()) == sorted(proxies), sorted(server.proxies()))

    populated = server.populate([{"name": "again", "upstream": sb.addrs["echo"],
                                  "listen": "127.0.0.1:0"}])
    ok, _ = echoes(address_of(populated[0]))
    check("populate makes working proxies", ok)


if __name__ == "__main__":
    run("Toxiproxy client", scenario, services=("toxiproxy", "echo", "smtp"))
