#!/usr/bin/env python3
"""The Kubernetes manifests (deploy/kubernetes/), checked without a cluster.

Each kubectl given renders the base and every overlay with its built-in kustomize (Debian's
kubectl 1.20 among them: the manifests use only what its kustomize knows); PyPI's
kubernetes-validate checks every rendered object against the Kubernetes schemas, strictly
(unknown fields rejected), for the oldest and newest versions it carries; and the objects
themselves must hold what docs/kubernetes.md promises: non-root, read-only root
filesystem, no privilege escalation, every capability dropped, the unprivileged-port
sysctl, the probes on /livez and /readyz, requests and limits, and each overlay's change.

    python3 tests/interop/kubernetes.py KUBECTL [KUBECTL...]

Needs kubernetes-validate (and its PyYAML) in the Python that runs it.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
TARGETS = ["base", "overlays/persistent-mail", "overlays/ci-job", "overlays/network-policy"]
# The oldest and the newest schemas kubernetes-validate carries.
VERSIONS = ["1.25.0", "1.37.0"]

failures = []


def check(what, ok, detail=""):
    print(("  ok: " if ok else "  FAIL: ") + what + ("" if ok else f" ({detail})"))
    if not ok:
        failures.append(what)


def render(kubectl, target):
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE / target)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"{kubectl} kustomize {target} failed:\n{result.stderr}")
    return result.stdout


def validate(text, version):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "--quiet", "-k", version, f.name],
        capture_output=True,
        text=True,
    )
    Path(f.name).unlink()
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def check_deployment(deployment, label):
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    ctx = pod["securityContext"]
    check(f"{label}: one replica", deployment["spec"]["replicas"] == 1)
    check(f"{label}: runs as non-root user 10001",
          ctx.get("runAsNonRoot") is True and ctx.get("runAsUser") == 10001, ctx)
    check(f"{label}: the unprivileged-port sysctl is 0",
          {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"} in ctx.get("sysctls", []),
          ctx.get("sysctls"))
    c = container["securityContext"]
    check(f"{label}: read-only root filesystem", c.get("readOnlyRootFilesystem") is True, c)
    check(f"{label}: no privilege escalation", c.get("allowPrivilegeEscalation") is False, c)
    check(f"{label}: every capability dropped", c.get("capabilities", {}).get("drop") == ["ALL"], c)
    for probe, path in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")]:
        get = container.get(probe, {}).get("httpGet", {})
        check(f"{label}: {probe} on {path}", get.get("path") == path and get.get("port") == "http", get)
    resources = container.get("resources", {})
    check(f"{label}: memory request and limit",
          "memory" in resources.get("requests", {}) and "memory" in resources.get("limits", {}),
          resources)
    ports = {p["containerPort"] for p in container["ports"]}
    check(f"{label}: ports 25, 80, 443, 8474", ports == {25, 80, 443, 8474}, ports)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    check(f"{label}: writes only to /certs and /mail (and reads its config)",
          mounts == {"/certs", "/mail", "/etc/switchboard"}, mounts)
    return pod, container


def check_target(target, objects, label):
    [deployment] = by_kind(objects, "Deployment")
    [service] = by_kind(objects, "Service")
    pod, container = check_deployment(deployment, label)
    check(f"{label}: the Service has 25, 80, 443, 8474",
          sorted(p["port"] for p in service["spec"]["ports"]) == [25, 80, 443, 8474],
          service["spec"]["ports"])
    check(f"{label}: the Service keeps the pod during a deliberate fault",
          service["spec"].get("publishNotReadyAddresses") is True, service["spec"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    if target == "overlays/persistent-mail":
        [claim] = by_kind(objects, "PersistentVolumeClaim")
        for name in ["mail", "certs"]:
            check(f"{label}: {name} on the claim",
                  volumes[name].get("persistentVolumeClaim", {}).get("claimName")
                  == claim["metadata"]["name"] and "emptyDir" not in volumes[name], volumes[name])
    else:
        check(f"{label}: mail in an emptyDir", "emptyDir" in volumes["mail"], volumes["mail"])
    if target == "overlays/ci-job":
        names = [o["metadata"]["name"] for o in objects]
        check(f"{label}: every name has the job's suffix",
              all("-example-1234" in n for n in names), names)
        check(f"{label}: every object has the job's label",
              all(o["metadata"]["labels"].get("ci-job") == "example-1234" for o in objects))
        check(f"{label}: the Service selects the job's pod only",
              service["spec"]["selector"].get("ci-job") == "example-1234", service["spec"]["selector"])
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        check(f"{label}: the certificate carries the job's Service name",
              env.get("SWITCHBOARD_NAME") == service["metadata"]["name"], env)
    if target == "overlays/network-policy":
        [policy] = by_kind(objects, "NetworkPolicy")
        rules = policy["spec"]["ingress"]
        open_to_all = [r for r in rules if "from" not in r]
        mail_only = [r for r in rules if "from" in r]
        check(f"{label}: port 80 from anyone",
              [p["port"] for r in open_to_all for p in r["ports"]] == ["http"], open_to_all)
        check(f"{label}: port 25 only from pods labelled may-send-mail=true",
              len(mail_only) == 1
              and mail_only[0]["from"] == [{"podSelector": {"matchLabels": {"may-send-mail": "true"}}}]
              and [p["port"] for p in mail_only[0]["ports"]] == ["smtp"], mail_only)


def main():
    kubectls = sys.argv[1:]
    if not kubectls:
        raise SystemExit(__doc__)
    rendered = {}
    for kubectl in kubectls:
        version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True)
        print(f"== {kubectl}: {version.stdout.strip().splitlines()[0]}")
        for target in TARGETS:
            text = render(kubectl, target)
            objects = [o for o in yaml.safe_load_all(text) if o]
            print(f"-- {target}: {', '.join(o['kind'] for o in objects)}")
            check_target(target, objects, target)
            rendered[(kubectl, target)] = text

    print("== kubernetes-validate, strict")
    for (kubectl, target), text in rendered.items():
        for version in VERSIONS:
            ok, out = validate(text, version)
            check(f"{target}, as {kubectl} renders it, is valid Kubernetes {version}", ok, out)
    # The validator can say no: a Deployment with an unknown field must fail.
    broken = rendered[(kubectls[0], "base")].replace("replicas: 1", "replicas: 1\n  replica: 1", 1)
    ok, _ = validate(broken, VERSIONS[-1])
    check("a Deployment with an unknown field is rejected (the check can fail)", not ok)

    if failures:
        raise SystemExit(f"kubernetes: {len(failures)} check(s) failed")
    print("kubernetes: every manifest renders, validates and holds its promises")


if __name__ == "__main__":
    main()
