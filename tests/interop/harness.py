"""What the interop scripts share: switchboard started on ports the kernel chooses (learnt
from its JSON log), and a list of named checks that ends in one verdict.

Each script runs clients from outside the Rust world against the built binary; .ci/run
installs the clients (Debian packages) and runs the scripts.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request

PATIENCE = 15  # seconds; only reached when something is wrong


class Switchboard:
    """switchboard with one port per service on 127.0.0.1, each on a free port."""

    def __init__(self, binary, workdir, services=("http", "smtp"), settings=""):
        config = os.path.join(workdir, "switchboard.toml")
        with open(config, "w") as f:
            for service in services:
                f.write(f'[[port]]\nport = 0\nservice = "{service}"\nbind = ["127.0.0.1"]\n\n')
            f.write(settings)
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

    def port(self, service):
        return int(self.addrs[service].rsplit(":", 1)[1])

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


def run(what, scenario, **switchboard):
    """Start switchboard (binary from argv[1]), run `scenario(sb)`, stop it, and exit with
    the verdict of every check."""
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as workdir:
        sb = Switchboard(binary, workdir, **switchboard)
        try:
            scenario(sb)
        finally:
            code = sb.stop()
            check("switchboard exits 0 on SIGTERM", code == 0, f"exit code {code}")
    if failures:
        sys.exit(f"{len(failures)} {what} check(s) failed: {', '.join(failures)}")
    print(f"all {what} checks passed")
