#!/usr/bin/env python3
"""switchboard from Testcontainers, as a Python test suite would start it.

PyPI's testcontainers starts the locally built image (switchboard:latest, from
docker/build-offline.sh), waits until GET /readyz answers 200, and the test then sends a
message with smtplib and reads it back through the Mailpit-shaped API, calls an httpbin
endpoint over HTTPS trusting the CA from /ca.pem, and adds a toxic through Toxiproxy's API.

Testcontainers' reaper (Ryuk) is an image pulled from a registry, which this machine cannot
reach: it is disabled with TESTCONTAINERS_RYUK_DISABLED=true, as Testcontainers documents
for environments without it, and the container is removed by the `with` block instead.

    TESTCONTAINERS_RYUK_DISABLED=true python3 tests/interop/testcontainers_client.py [IMAGE]
"""

import json
import os
import smtplib
import ssl
import sys
import tempfile
import urllib.request
from email.message import EmailMessage

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.wait_strategies import HttpWaitStrategy  # noqa: E402

IMAGE = sys.argv[1] if len(sys.argv) > 1 else "switchboard:latest"


def get(url, context=None):
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        return response.status, response.read()


def post_json(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"null")


def send(host, port, subject):
    message = EmailMessage()
    message["From"] = "app@example.test"
    message["To"] = "user@example.test"
    message["Subject"] = subject
    message.set_content("Sent from a Testcontainers test.")
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(message)


def main():
    container = (
        DockerContainer(IMAGE)
        .with_exposed_ports(25, 80, 443, 8474)
        # The test runs outside the container: its requests arrive from Docker's gateway,
        # which the control and Toxiproxy APIs must allow (loopback only by default).
        .with_env("SWITCHBOARD_CONTROL_ALLOW", "127.0.0.0/8,172.16.0.0/12,192.168.0.0/16")
        .waiting_for(HttpWaitStrategy(80, "/readyz").for_status_code(200))
    )
    with container:
        host = container.get_container_host_ip()
        http = f"http://{host}:{container.get_exposed_port(80)}"
        smtp_port = int(container.get_exposed_port(25))
        print(f"started {IMAGE}: http {http}, smtp {host}:{smtp_port}")

        status, body = get(f"{http}/readyz")
        assert (status, body) == (200, b"ready\n"), (status, body)
        print("ok: /readyz says ready")

        send(host, smtp_port, "from testcontainers")
        _, body = get(f"{http}/api/v1/messages")
        messages = json.loads(body)
        assert messages["total"] == 1, messages
        assert messages["messages"][0]["Subject"] == "from testcontainers", messages
        print("ok: a message sent with smtplib is read back through /api/v1/messages")

        _, ca = get(f"{http}/ca.pem")
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
            f.write(ca)
        context = ssl.create_default_context(cafile=f.name)
        https = f"https://localhost:{container.get_exposed_port(443)}"
        status, body = get(f"{https}/get?from=testcontainers", context)
        assert status == 200 and json.loads(body)["args"] == {"from": "testcontainers"}, body
        print("ok: httpbin's /get over HTTPS, trusting /ca.pem")
        untrusting = ssl.create_default_context()
        try:
            get(f"{https}/get", untrusting)
            raise AssertionError("a client that does not trust the CA was accepted")
        except urllib.error.URLError as error:
            assert isinstance(error.reason, ssl.SSLCertVerificationError), error
        print("ok: a client that does not trust the CA is refused")

        toxiproxy = f"http://{host}:{container.get_exposed_port(8474)}"
        status, toxic = post_json(
            f"{toxiproxy}/proxies/smtp-25/toxics",
            {"type": "reset_peer", "attributes": {"timeout": 0}},
        )
        assert status == 200 and toxic["type"] == "reset_peer", (status, toxic)
        try:
            send(host, smtp_port, "through a reset_peer toxic")
            raise AssertionError("SMTP worked through a reset_peer toxic")
        except (smtplib.SMTPException, OSError) as error:
            print(f"ok: a reset_peer toxic added through Toxiproxy's API cuts SMTP ({error!r})")
        post_json(f"{toxiproxy}/reset", {})
        send(host, smtp_port, "after the reset")
        _, body = get(f"{http}/api/v1/messages")
        assert json.loads(body)["total"] == 2, body
        print("ok: after POST /reset, mail goes through again")
    print("testcontainers: passed")


if __name__ == "__main__":
    main()
