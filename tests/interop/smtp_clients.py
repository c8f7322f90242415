#!/usr/bin/env python3
"""Interop: real SMTP clients from outside the Rust world against switchboard.

swaks (plain, --tls, --auth PLAIN and LOGIN, --pipeline) and Python's smtplib (plain,
STARTTLS with the local CA, AUTH, several recipients, SMTPUTF8) send mail to a switchboard
started on ephemeral ports; every message is then read back through the HTTP API.

Usage: smtp_clients.py path/to/switchboard
Run by .ci/run; needs swaks (Debian package swaks) and Python 3.
"""

import json
import os
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from email.message import EmailMessage

PATIENCE = 15  # seconds; only reached when something is wrong


class Switchboard:
    """switchboard on ephemeral ports of 127.0.0.1; learns them from its JSON log."""

    def __init__(self, binary, workdir):
        config = os.path.join(workdir, "switchboard.toml")
        with open(config, "w") as f:
            f.write(
                '[[port]]\nport = 0\nservice = "http"\nbind = ["127.0.0.1"]\n'
                '[[port]]\nport = 0\nservice = "smtp"\nbind = ["127.0.0.1"]\n'
            )
        self.certs = os.path.join(workdir, "certs")
        self.proc = subprocess.Popen(
            [binary, "serve", "--config", config, "--certs", self.certs, "--log-format", "json"],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.addrs = {}
        for line in self.proc.stderr:
            fields = json.loads(line).get("fields", {})
            if fields.get("ready"):
                break
            if "addr" in fields and "service" in fields:
                self.addrs[fields["service"]] = fields["addr"]
        else:
            raise SystemExit("switchboard exited before it was ready")
        # Keep draining the log so that the server never waits on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        self.ca = os.path.join(self.certs, "ca.pem")
        host, port = self.addrs["smtp"].rsplit(":", 1)
        self.smtp_host, self.smtp_port = host, int(port)

    def api(self, path):
        with urllib.request.urlopen(f"http://{self.addrs['http']}{path}", timeout=PATIENCE) as r:
            return json.load(r)

    def message_with_subject(self, subject):
        query = urllib.parse.urlencode({"query": f'subject:"{subject}"', "timeout": "5s"})
        summary = self.api(f"/api/v1/wait?{query}")
        return self.api(f"/api/v1/message/{summary['ID']}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=PATIENCE)


failures = []


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"))
    if not condition:
        failures.append(name)


def swaks(sb, subject, *extra):
    args = [
        "swaks", "--server", sb.smtp_host, "--port", str(sb.smtp_port),
        "--from", "swaks@example.test", "--to", "inbox@example.test",
        "--header", f"Subject: {subject}", "--body", "sent by swaks", *extra,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=PATIENCE)
    check(f"swaks {' '.join(extra) or 'plain'} exits 0", result.returncode == 0, result.stdout[-800:])
    return sb.message_with_subject(subject)


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as workdir:
        sb = Switchboard(binary, workdir)
        try:
            run_clients(sb)
        finally:
            code = sb.stop()
            check("switchboard exits 0 on SIGTERM", code == 0, f"exit code {code}")
    if failures:
        sys.exit(f"{len(failures)} interop check(s) failed: {', '.join(failures)}")
    print("all interop checks passed")


def run_clients(sb):
    m = swaks(sb, "swaks plain")
    check("swaks plain: captured", m["Envelope"]["RcptTo"] == ["inbox@example.test"], m["Envelope"])
    check("swaks plain: not TLS", m["Envelope"]["TLS"] is False)

    m = swaks(sb, "swaks tls", "--tls", "--tls-verify", "--tls-ca-path", sb.ca, "--tls-sni", "localhost")
    check("swaks --tls: over TLS", m["Envelope"]["TLS"] is True, m["Envelope"])

    for mech in ["PLAIN", "LOGIN"]:
        m = swaks(sb, f"swaks auth {mech}", "--tls", "--auth", mech, "--auth-user", f"user-{mech}", "--auth-password", "pw")
        check(f"swaks --auth {mech}: user kept", m["Envelope"]["AuthUser"] == f"user-{mech}", m["Envelope"])

    m = swaks(sb, "swaks pipeline", "--pipeline")
    check("swaks --pipeline: captured", m["Subject"] == "swaks pipeline")

    # Python's smtplib
    msg = EmailMessage()
    msg["From"] = "Python <python@example.test>"
    msg["To"] = "one@example.test, two@example.test"
    msg["Subject"] = "smtplib plain"
    msg.set_content("hello from smtplib\n.starts with a dot\n")
    with smtplib.SMTP(sb.smtp_host, sb.smtp_port, timeout=PATIENCE) as smtp:
        smtp.send_message(msg, to_addrs=["one@example.test", "two@example.test", "hidden@example.test"])
    m = sb.message_with_subject("smtplib plain")
    check("smtplib: several recipients", m["Envelope"]["RcptTo"] == ["one@example.test", "two@example.test", "hidden@example.test"], m["Envelope"])
    check("smtplib: bcc derived", [a["Address"] for a in m["Bcc"]] == ["hidden@example.test"], m["Bcc"])
    check("smtplib: dot line survives", ".starts with a dot" in m["Text"], m["Text"])

    context = ssl.create_default_context(cafile=sb.ca)
    msg = EmailMessage()
    msg["From"] = "python@example.test"
    msg["To"] = "secure@example.test"
    msg["Subject"] = "smtplib starttls auth"
    msg.set_content("over TLS, authenticated")
    with smtplib.SMTP("localhost", sb.smtp_port, timeout=PATIENCE) as smtp:
        smtp.starttls(context=context)
        smtp.login("py-user", "py-password")
        smtp.send_message(msg)
    m = sb.message_with_subject("smtplib starttls auth")
    check("smtplib STARTTLS: verified and over TLS", m["Envelope"]["TLS"] is True, m["Envelope"])
    check("smtplib AUTH: user kept", m["Envelope"]["AuthUser"] == "py-user", m["Envelope"])

    msg = EmailMessage()
    msg["From"] = "Jürgen <jürgen@exämple.test>"
    msg["To"] = "zoë@exämple.test"
    msg["Subject"] = "smtplib utf8"
    msg.set_content("Grüße")
    with smtplib.SMTP(sb.smtp_host, sb.smtp_port, timeout=PATIENCE) as smtp:
        smtp.send_message(msg, mail_options=["SMTPUTF8"])
    m = sb.message_with_subject("smtplib utf8")
    check("smtplib SMTPUTF8: envelope", m["Envelope"]["MailFrom"] == "jürgen@exämple.test", m["Envelope"])

    with smtplib.SMTP(sb.smtp_host, sb.smtp_port, timeout=PATIENCE) as smtp:
        code, _ = smtp.docmd("RCPT", "TO:<x@example.test>")
        check("smtplib: RCPT before MAIL is 503", code == 503, code)


if __name__ == "__main__":
    main()
