#!/usr/bin/env python3
"""HTTPie's own test suite, run twice: against PyPI's httpbin (served by pytest-httpbin, as
HTTPie's maintainers run it) and against switchboard's http and https rows. Every test that
passes against httpbin must pass against switchboard, or be in KNOWN below with why (each
a deliberate difference, also in docs/api.md's "Differences from httpbin").

Usage: httpie_suite.py path/to/switchboard

Works in target/httpie/: the sdist (which carries the tests) downloaded from PyPI, a venv
with HTTPie and its test dependencies, and one unpacked copy of the suite per run. The two
runs go side by side. Nothing leaves loopback: httpie_noremote.py makes every name but
localhost fail to resolve, so the tests that want pie.dev skip in both runs (and are counted).
"""

import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET

HTTPIE = "3.2.4"
# What the suite needs beside HTTPie, at the versions it was sized with.
TEST_DEPS = ["pytest==9.2.0", "pytest-httpbin==2.1.0", "responses", "pytest-mock==3.17.0"]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(ROOT, "target", "httpie")

# Tests that pass against httpbin and not against switchboard, on purpose.
KNOWN = {
    "tests.test_json::test_nested_json_syntax[input_json17-expected_json17]":
        "sends the header `baz[]: 3`: not an RFC 9110 token, so hyper's parser answers 400 "
        "where Werkzeug accepts it",
}


def sh(*args, **kwargs):
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, **kwargs)


def prepare():
    os.makedirs(WORK, exist_ok=True)
    sdist = os.path.join(WORK, f"httpie-{HTTPIE}.tar.gz")
    if not os.path.exists(sdist):
        sh(sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
           "--no-deps", f"httpie=={HTTPIE}", "-d", WORK)
    venv = os.path.join(WORK, "venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        sh(sys.executable, "-m", "venv", venv)
        sh(python, "-m", "pip", "install", "--quiet", sdist, *TEST_DEPS)
    trees = {}
    for run in ("httpbin", "switchboard"):
        tree = os.path.join(WORK, run)
        shutil.rmtree(tree, ignore_errors=True)
        with tarfile.open(sdist) as archive:
            try:
                archive.extractall(tree, filter="data")
            except TypeError:  # a Python without extraction filters (before 3.11.4)
                archive.extractall(tree)
        trees[run] = os.path.join(tree, f"httpie-{HTTPIE}")
    # At the suite's root: its fixtures win over pytest-httpbin's.
    shutil.copy(os.path.join(HERE, "httpie_conftest.py"),
                os.path.join(trees["switchboard"], "conftest.py"))
    return python, trees


def start(python, tree, binary):
    env = dict(os.environ, PYTHONPATH=HERE, SWITCHBOARD=binary, SWITCHBOARD_INTEROP=HERE)
    env.pop("REQUESTS_CA_BUNDLE", None)
    report = os.path.join(tree, "report.xml")
    log = open(os.path.join(tree, "pytest.log"), "w")
    proc = subprocess.Popen(
        [python, "-m", "pytest", "-q", "-p", "httpie_noremote", "-p", "no:cacheprovider",
         "-o", "addopts=", "--junitxml", report, "tests"],
        cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    return proc, report


def outcomes(report):
    """Each test's outcome: passed, failed or skipped."""
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            found[name] = "failed"
        elif case.find("skipped") is not None:
            found[name] = "skipped"
        else:
            found[name] = "passed"
    return found


def counts(found):
    return {kind: sum(1 for v in found.values() if v == kind) for kind in ("passed", "failed", "skipped")}


def main():
    binary = os.path.abspath(sys.argv[1])
    python, trees = prepare()
    runs = {run: start(python, tree, binary) for run, tree in trees.items()}
    results = {}
    for run, (proc, report) in runs.items():
        proc.wait(timeout=900)
        results[run] = outcomes(report)
        c = counts(results[run])
        print(f"HTTPie {HTTPIE}'s tests against {run}: {c['passed']} passed, "
              f"{c['failed']} failed, {c['skipped']} skipped (pytest log: {trees[run]}/pytest.log)")
    lost = sorted(name for name, outcome in results["httpbin"].items()
                  if outcome == "passed" and results["switchboard"].get(name) != "passed")
    unexplained = [name for name in lost if name not in KNOWN]
    for name in lost:
        print(("known " if name in KNOWN else "FAIL  ") + name
              + (f": {KNOWN[name]}" if name in KNOWN else ""))
    stale = [name for name in KNOWN if name not in lost]
    for name in stale:
        print(f"FAIL  {name} is listed as a difference but passes (or no longer runs): drop it")
    print(f"passed against httpbin but not against switchboard: {len(lost)} "
          f"({len(lost) - len(unexplained)} known, {len(unexplained)} unexplained)")
    sys.exit(1 if unexplained or stale else 0)


if __name__ == "__main__":
    main()
