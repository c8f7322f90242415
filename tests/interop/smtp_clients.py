#!/usr/bin/env python3
"""Interop: real SMTP clients from outside the Rust world against switchboard.

swaks (plain, --tls, --auth PLAIN and LOGIN, --pipeline) and Python's smtplib (plain,
STARTTLS with the local CA, AUTH, several recipients, SMTPUTF8) send mail to a switchboard
started on ephemeral ports; every message is then read back through the HTTP API.

Usage: smtp_clients.py path/to/switchboard
Run by .ci/run; needs swaks (Debian package swaks) and Python 3.
"""

import smtplib
import ssl
import subprocess
from email.message import EmailMessage

from harness import PATIENCE, check, run


def swaks(sb, subject, *extra):
    args = [
        "swaks", "--server", "127.0.0.1", "--port", str(sb.port("smtp")),
        "--from", "swaks@example.test", "--to", "inbox@example.test",
        "--header", f"Subject: {subject}", "--body", "sent by swaks", *extra,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=PATIENCE)
    check(f"swaks {' '.join(extra) or 'plain'} exits 0", result.returncode == 0, result.stdout[-800:])
    return sb.message_with_subject(subject)


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
    with smtplib.SMTP("127.0.0.1", sb.port("smtp"), timeout=PATIENCE) as smtp:
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
    with smtplib.SMTP("localhost", sb.port("smtp"), timeout=PATIENCE) as smtp:
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
    with smtplib.SMTP("127.0.0.1", sb.port("smtp"), timeout=PATIENCE) as smtp:
        smtp.send_message(msg, mail_options=["SMTPUTF8"])
    m = sb.message_with_subject("smtplib utf8")
    check("smtplib SMTPUTF8: envelope", m["Envelope"]["MailFrom"] == "jürgen@exämple.test", m["Envelope"])

    with smtplib.SMTP("127.0.0.1", sb.port("smtp"), timeout=PATIENCE) as smtp:
        code, _ = smtp.docmd("RCPT", "TO:<x@example.test>")
        check("smtplib: RCPT before MAIL is 503", code == 503, code)


if __name__ == "__main__":
    run("SMTP interop", run_clients)
