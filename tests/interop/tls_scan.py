#!/usr/bin/env python3
"""Security: testssl.sh scans HTTPS and SMTP STARTTLS of a running switchboard.

Passes when no protocol below TLS 1.2 is offered, TLS 1.2 and 1.3 are, the certificate
chain verifies against the local CA, and no finding is rated HIGH or CRITICAL. The full
reports are saved in target/testssl/ (JSON and text) for reading.

Usage: tls_scan.py path/to/switchboard
Run by .ci/run; needs testssl.sh (Debian package testssl.sh, command `testssl`).
"""

import json
import os
import socket
import subprocess
import urllib.request

from harness import PATIENCE, check, run

REPORTS = os.path.join(os.path.dirname(__file__), "..", "..", "target", "testssl")


def testssl(name, ca, *target):
    os.makedirs(REPORTS, exist_ok=True)
    report = os.path.join(REPORTS, f"{name}.json")
    if os.path.exists(report):
        os.remove(report)
    with open(os.path.join(REPORTS, f"{name}.txt"), "w") as text:
        subprocess.run(
            ["testssl", "--quiet", "--warnings", "batch", "--color", "0", "--add-ca", ca,
             "--jsonfile", report, *target],
            stdout=text, stderr=subprocess.STDOUT, timeout=600,
        )
    with open(report) as f:
        return {finding["id"]: finding for finding in json.load(f)}


def verdicts(name, findings):
    for protocol in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]:
        finding = findings.get(protocol, {}).get("finding", "")
        check(f"{name}: {protocol} not offered", finding.startswith("not offered"), finding)
    for protocol in ["TLS1_2", "TLS1_3"]:
        finding = findings.get(protocol, {}).get("finding", "")
        check(f"{name}: {protocol} offered", finding.startswith("offered"), finding)
    chain = findings.get("cert_chain_of_trust", {}).get("finding", "")
    check(f"{name}: certificate chain verifies with the local CA", chain.startswith("passed"), chain)
    serious = [f"{f['id']} ({f['severity']}): {f['finding']}" for f in findings.values()
               if f["severity"] in ("HIGH", "CRITICAL")]
    check(f"{name}: no finding rated HIGH or CRITICAL", not serious, serious)
    print(f"     ({name}: {len(findings)} findings, report in target/testssl/{name}.txt)")


def revocation_list(sb, workdir):
    """The certificate names where its CA's revocation list is; it must be there, signed."""
    crl = os.path.join(workdir, "ca.crl")
    url = f"http://localhost:{sb.port('http')}/ca.crl"
    with urllib.request.urlopen(url, timeout=PATIENCE) as r, open(crl, "wb") as f:
        f.write(r.read())
    r = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", crl, "-CAfile", sb.ca, "-noout", "-text"],
        capture_output=True, text=True,
    )
    check("the CRL at the certificate's address is signed by the CA and revokes nothing",
          "verify OK" in r.stderr + r.stdout and "No Revoked Certificates" in r.stdout, r)
    r = subprocess.run(
        ["openssl", "x509", "-in", os.path.join(sb.certs, "server.pem"), "-noout", "-ext",
         "crlDistributionPoints"], capture_output=True, text=True,
    )
    check("the server certificate names that address", url in r.stdout, r.stdout)


def scan(sb):
    revocation_list(sb, sb.certs)
    verdicts("https", testssl("https", sb.ca, f"https://127.0.0.1:{sb.port('https')}"))
    verdicts("smtp-starttls", testssl("smtp-starttls", sb.ca, "-t", "smtp", f"127.0.0.1:{sb.port('smtp')}"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    # The http port is chosen here, not by the kernel at bind time: the server certificate
    # carries its address (the revocation list's), so it must be known before start.
    http = f'[[port]]\nport = {free_port()}\nservice = "http"\nbind = ["127.0.0.1"]\n\n'
    run("TLS scan", scan, services=("https", "smtp"), settings=http)
