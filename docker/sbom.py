#!/usr/bin/env python3
"""The image's software bill of materials, as CycloneDX 1.5 JSON, and a check of it.

    docker/sbom.py OUT_DIR

The image holds one file of code, the static `x86_64-unknown-linux-musl` switchboard binary,
so its SBOM is that binary's crates: cargo-cyclonedx (from crates.io) describes them, and
this script checks the result against `cargo tree` for the same target, so that an SBOM
that misses a crate of the binary fails CI. Writes OUT_DIR/switchboard.cdx.json.
"""

import json
import pathlib
import re
import subprocess
import sys

TARGET = "x86_64-unknown-linux-musl"
ROOT = pathlib.Path(__file__).resolve().parent.parent
# The required building blocks: an SBOM without them describes something else.
MUST_LIST = ["tokio", "hyper", "tokio-rustls", "rustls", "ring", "rcgen", "tracing-subscriber"]


def generate(out: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        ["cargo", "cyclonedx", "--manifest-path", "crates/switchboard/Cargo.toml",
         "--format", "json", "--describe", "binaries", "--spec-version", "1.5",
         "--target", TARGET, "--no-build-deps", "--quiet"],
        cwd=ROOT, check=True)
    # cargo-cyclonedx writes next to every binary crate's manifest: keep the image's one.
    written = sorted(ROOT.glob("**/*_bin.cdx.json"))
    written = [p for p in written if "target" not in p.relative_to(ROOT).parts]
    sbom = out / "switchboard.cdx.json"
    for path in written:
        if path.parent == ROOT / "crates" / "switchboard":
            path.replace(sbom)
        else:
            path.unlink()
    if not sbom.exists():
        sys.exit(f"sbom: cargo-cyclonedx wrote no SBOM for crates/switchboard ({written})")
    return sbom


def crates_in_the_binary() -> set[tuple[str, str]]:
    tree = subprocess.run(
        ["cargo", "tree", "-p", "switchboard", "--target", TARGET, "-e", "normal",
         "--prefix", "none", "-f", "{p}"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    crates = set()
    for line in tree.splitlines():
        found = re.match(r"(\S+) v(\S+)", line)
        if found and found.group(1) != "switchboard":
            crates.add((found.group(1), found.group(2)))
    return crates


def check(sbom: pathlib.Path) -> None:
    bom = json.loads(sbom.read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5", bom["specVersion"]
    main = bom["metadata"]["component"]
    version = re.search(r'^version = "(.+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    assert (main["name"], main["version"]) == ("switchboard", version), main
    components = bom["components"]
    listed = {(c["name"], c["version"]) for c in components}
    for component in components:
        assert component.get("purl", "").startswith("pkg:cargo/"), component
    unlicensed = sorted(c["name"] for c in components if not c.get("licenses"))
    assert not unlicensed, f"components without a license: {unlicensed}"
    names = {name for name, _ in listed}
    missing = [name for name in MUST_LIST if name not in names]
    assert not missing, f"the building blocks {missing} are not in the SBOM"
    built = crates_in_the_binary()
    assert built <= listed, f"crates in the binary but not in the SBOM: {sorted(built - listed)}"
    # cargo-cyclonedx resolves features for the whole workspace (test-only features
    # included), so it may list a few optional crates the binary leaves out: an SBOM that
    # says too much is safe, one that says too little is not.
    extra = sorted(f"{name} {version}" for name, version in listed - built)
    print(f"sbom: {sbom.relative_to(ROOT)}: {len(components)} crates, CycloneDX 1.5, each "
          f"with its license and purl; every one of the binary's {len(built)} crates "
          f"(cargo tree, {TARGET}) is listed, and {len(extra)} more: {', '.join(extra)}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = (ROOT / sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    check(generate(out))


if __name__ == "__main__":
    main()
