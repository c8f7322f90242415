#!/usr/bin/env python3
"""Interop: real HTTP and TLS clients, and a port scanner, against switchboard.

curl (HTTP/1.1, h2c with prior knowledge, h2 over TLS verifying the local CA; httpbin's
compression, Digest auth, ranges, cookies and trailers), PyPI's requests and websockets
(Digest auth, server-sent events, the WebSocket echo), openssl
s_client (TLS 1.2 and 1.3, ALPN, STARTTLS for SMTP; TLS 1.1 refused), Python's
http.client (plain and HTTPS with the CA), and nmap: -sT sees the ports open and the unbound
ones closed, -sV recognises the services. With root, nmap looks at switchboard on the real
ports 25, 80 and 443 (of 127.0.0.1 only), where its service table applies; without root the
scan uses the ephemeral ports, and only SMTP can be recognised from its answers alone.

Usage: http_clients.py path/to/switchboard
Run by .ci/run; needs curl, openssl and nmap (Debian packages) and Python 3.
"""

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from harness import PATIENCE, Switchboard, check, run


def sh(*args, stdin="", timeout=PATIENCE):
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)


def curl(*args):
    return sh("curl", "--silent", "--show-error", "--max-time", str(PATIENCE), *args)


def s_client(address, *args, stdin=""):
    return sh(
        "openssl", "s_client", "-connect", address, "-servername", "localhost", "-brief", *args,
        stdin=stdin,
    )


def python_libraries(http_addr):
    """PyPI's requests (Digest auth, streaming) and websockets, when installed (.ci/run puts
    them in its virtual environment)."""
    try:
        import asyncio

        import requests
        import websockets
    except ImportError as missing:
        check(f"Python libraries for the httpbin checks ({missing.name})", False, "pip install requests websockets")
        return
    base = f"http://{http_addr}"
    for algorithm in ("MD5", "SHA-256", "SHA-512"):
        response = requests.get(f"{base}/digest-auth/auth/alice/s3cret/{algorithm}",
                                auth=requests.auth.HTTPDigestAuth("alice", "s3cret"), timeout=PATIENCE)
        check(f"requests' HTTPDigestAuth with {algorithm}",
              response.status_code == 200 and response.json()["user"] == "alice", response.text)
    response = requests.get(f"{base}/digest-auth/auth/alice/s3cret",
                            auth=requests.auth.HTTPDigestAuth("alice", "wrong"), timeout=PATIENCE)
    check("requests' HTTPDigestAuth with a wrong password gets 401", response.status_code == 401, response.text)

    with requests.get(f"{base}/sse?count=3&duration=0.3", stream=True, timeout=PATIENCE) as response:
        data = [json.loads(line[5:]) for line in response.iter_lines(decode_unicode=True) if line.startswith("data:")]
    check("requests streams /sse's three events", [d["id"] for d in data] == [0, 1, 2], data)

    async def echo():
        async with websockets.connect(f"ws://{http_addr}/websocket/echo") as socket:
            await socket.send("hello")
            text = await socket.recv()
            await socket.send(b"\x00\xff")
            return text, await socket.recv()

    answers = asyncio.run(asyncio.wait_for(echo(), PATIENCE))
    check("websockets' client gets its text and binary messages back", answers == ("hello", b"\x00\xff"), answers)


def clients(sb):
    http_addr, https_port = sb.addrs["http"], sb.port("https")
    https_url = f"https://localhost:{https_port}"

    r = curl("--http1.1", "--write-out", "\n%{http_version}", f"http://{http_addr}/get?x=1")
    body, version = r.stdout.rsplit("\n", 1)
    check("curl HTTP/1.1", r.returncode == 0 and version == "1.1" and json.loads(body)["args"] == {"x": "1"}, r)

    r = curl("-F", "name=sb", "-F", f"upload=@{__file__};filename=clients.py", f"http://{http_addr}/post")
    posted = json.loads(r.stdout) if r.returncode == 0 else {}
    check("curl -F multipart: fields in form, files in files",
          posted.get("form") == {"name": "sb"} and "def clients" in posted.get("files", {}).get("upload", ""), r)

    r = curl("--user", "alice:s3cret", "--write-out", "\n%{http_code}", f"http://{http_addr}/basic-auth/alice/s3cret")
    body, code = r.stdout.rsplit("\n", 1)
    check("curl --user basic auth", code == "200" and json.loads(body) == {"authenticated": True, "user": "alice"}, r)

    r = curl("--location", "--write-out", "\n%{url_effective} %{num_redirects}", f"http://{http_addr}/redirect/3")
    body, effective = r.stdout.rsplit("\n", 1)
    check("curl --location follows /redirect/3 to /get in 3 hops", effective == f"http://{http_addr}/get 3", r)

    with tempfile.TemporaryDirectory() as tmp:
        jar = os.path.join(tmp, "jar")
        curl("--location", "--cookie-jar", jar, "--cookie", jar, f"http://{http_addr}/cookies/set?a=1&b=2")
        r = curl("--location", "--cookie-jar", jar, "--cookie", jar, f"http://{http_addr}/cookies/delete?a")
        check("curl's cookie jar: set two, delete one", r.returncode == 0 and json.loads(r.stdout) == {"cookies": {"b": "2"}}, r)

    r = curl("--range", "2-4", "--write-out", "\n%{http_code}", f"http://{http_addr}/range/30")
    check("curl --range gets 206 and the span", r.stdout == "cde\n206", r)

    for path, key in (("gzip", "gzipped"), ("deflate", "deflated"), ("brotli", "brotli"), ("zstd", "zstd")):
        r = curl("--compressed", f"http://{http_addr}/{path}")
        check(f"curl --compressed decodes /{path}", r.returncode == 0 and json.loads(r.stdout).get(key) is True, r)

    for path in ("auth/alice/s3cret", "auth/alice/s3cret/SHA-256"):
        r = curl("--digest", "--user", "alice:s3cret", f"http://{http_addr}/digest-auth/{path}")
        ok = r.returncode == 0 and json.loads(r.stdout) == {"authenticated": True, "user": "alice"}
        check(f"curl --digest answers /digest-auth/{path}", ok, r)

    r = curl("--raw", "--header", "TE: trailers", "--dump-header", "-", f"http://{http_addr}/trailers?x-sum=42")
    check("curl reads the trailer after the chunked body", "trailer: x-sum" in r.stdout.lower()
          and r.stdout.rstrip().lower().endswith("x-sum: 42"), r)

    python_libraries(http_addr)

    r = curl("--http2-prior-knowledge", f"http://{http_addr}/whoami?format=json")
    check("curl h2c (prior knowledge)", r.returncode == 0 and json.loads(r.stdout)["protocol"] == "HTTP/2.0", r)

    r = curl("--http2", "--cacert", sb.ca, f"{https_url}/whoami?format=json")
    who = json.loads(r.stdout) if r.returncode == 0 else {}
    check("curl h2 over TLS, verifying the CA", who.get("protocol") == "HTTP/2.0" and who.get("tls", {}).get("alpn") == "h2", r)

    r = curl(f"{https_url}/healthz")
    check("curl without the CA refuses the certificate (exit 60)", r.returncode == 60, r)

    for version, flag in [("TLSv1.2", "-tls1_2"), ("TLSv1.3", "-tls1_3")]:
        r = s_client(f"127.0.0.1:{https_port}", flag, "-CAfile", sb.ca, "-verify_return_error")
        check(f"openssl s_client {version}", f"Protocol version: {version}" in r.stderr and "Verification: OK" in r.stderr, r.stderr)

    # The full report (without -brief) is the one that names the ALPN protocol.
    r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{https_port}", "-servername", "localhost",
           "-alpn", "h2", "-CAfile", sb.ca)
    check("openssl s_client ALPN h2", "ALPN protocol: h2" in r.stdout, r.stdout[-1500:])

    # Session resumption: one saved session, used twice, resumes both times (tickets are
    # stateless: a single-use ticket would give "New" the second time).
    request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with tempfile.TemporaryDirectory() as tmp:
        for version, flag in [("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")]:
            saved = os.path.join(tmp, f"session{flag}.pem")
            handshakes = []
            for session in (["-sess_out", saved], ["-sess_in", saved], ["-sess_in", saved]):
                r = sh("openssl", "s_client", flag, "-connect", f"127.0.0.1:{https_port}",
                       "-servername", "localhost", "-CAfile", sb.ca, "-ign_eof", *session,
                       stdin=request)
                handshakes += [line.split(",")[0] for line in r.stdout.splitlines()
                               if line.startswith(("New,", "Reused,"))]
            check(f"openssl s_client resumes one {version} session twice",
                  handshakes == ["New", "Reused", "Reused"], handshakes)

    # The client allows TLS 1.1 (security level 0); the server must still refuse it.
    r = s_client(f"127.0.0.1:{https_port}", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    check("openssl s_client TLS 1.1 is refused", r.returncode != 0 and "CONNECTION ESTABLISHED" not in r.stderr, r.stderr)

    r = s_client(
        f"127.0.0.1:{sb.port('smtp')}", "-starttls", "smtp", "-CAfile", sb.ca,
        "-verify_return_error", "-ign_eof", stdin="EHLO openssl\r\nQUIT\r\n",
    )
    check(
        "openssl s_client STARTTLS smtp",
        "Verification: OK" in r.stderr and "250-PIPELINING" in r.stdout
        and "STARTTLS" not in r.stdout and "221 2.0.0" in r.stdout,
        r.stdout + r.stderr,
    )

    host, port = http_addr.rsplit(":", 1)
    plain = http.client.HTTPConnection(host, int(port), timeout=PATIENCE)
    plain.request("POST", "/anything", body=b"from http.client", headers={"Content-Type": "text/plain"})
    response = plain.getresponse()
    check("http.client POST", response.status == 200 and json.load(response)["data"] == "from http.client")
    plain.close()

    context = ssl.create_default_context(cafile=sb.ca)
    secure = http.client.HTTPSConnection("localhost", https_port, context=context, timeout=PATIENCE)
    secure.request("GET", "/whoami?format=json")
    response = secure.getresponse()
    who = json.load(response)
    check("http.client HTTPS with the CA", response.status == 200 and who["service"] == "https", who)
    secure.close()

    scan(sb)


def nmap(*args):
    # Service detection waits on each probe in turn: allow it minutes, not seconds.
    r = sh("nmap", "-Pn", "-oX", "-", *args, timeout=300)
    ports = {}
    for port in ET.fromstring(r.stdout).iter("port"):
        service = port.find("service")
        ports[int(port.get("portid"))] = (
            port.find("state").get("state"),
            None if service is None else service.attrib,
        )
    return ports


def nothing_listens(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def scan(sb):
    if os.geteuid() == 0 and all(nothing_listens(p) for p in (25, 80, 443)):
        with tempfile.TemporaryDirectory() as workdir:
            wellknown = Switchboard(
                sys.argv[1], workdir, services=(),
                settings='[[port]]\nport = 25\nservice = "smtp"\nbind = ["127.0.0.1"]\n'
                '[[port]]\nport = 80\nservice = "http"\nbind = ["127.0.0.1"]\n'
                '[[port]]\nport = 443\nservice = "https"\nbind = ["127.0.0.1"]\n',
            )
            try:
                scan_ports(smtp=25, http=80, https=443, closed=[21, 22])
            finally:
                wellknown.stop()
    else:
        print("note: not root, or 25/80/443 taken: nmap scans the ephemeral ports")
        closed = [p for p in (free_port(), free_port())]
        scan_ports(smtp=sb.port("smtp"), http=sb.port("http"), https=sb.port("https"), closed=closed)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scan_ports(smtp, http, https, closed):
    closed = [p for p in closed if nothing_listens(p)]
    ports = [*closed, smtp, http, https]
    found = nmap("-sT", "-p", ",".join(map(str, ports)), "127.0.0.1")
    for port in closed:
        check(f"nmap -sT: {port} closed", found.get(port, ("?",))[0] == "closed", found.get(port))
    for port in (smtp, http, https):
        check(f"nmap -sT: {port} open", found.get(port, ("?",))[0] == "open", found.get(port))

    found = nmap("-sT", "-sV", "-p", f"{smtp},{http},{https}", "127.0.0.1")
    service = {port: (attrs or {}) for port, (_, attrs) in found.items()}
    check("nmap -sV: smtp recognised from its answers", service[smtp].get("name") == "smtp", service[smtp])
    if http == 80:
        check("nmap -sV: http", service[http].get("name") == "http", service[http])
        check(
            "nmap -sV: names switchboard from its Server header",
            service[http].get("product") == "switchboard",
            service[http],
        )
        check(
            "nmap -sV: ssl/https",
            service[https].get("tunnel") == "ssl" and service[https].get("name") in ("http", "https"),
            service[https],
        )
    else:
        check("nmap -sV: a TLS service on the https port", service[https].get("tunnel") == "ssl", service[https])


if __name__ == "__main__":
    run("HTTP and TLS interop", clients, services=("http", "https", "smtp"))
