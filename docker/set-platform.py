#!/usr/bin/env python3
"""Mark a local image as built for another architecture: docker save, change the
`architecture` of its config, docker load under a new tag.

    docker/set-platform.py IMAGE ARCH TAG        e.g. switchboard:arm64-build arm64 switchboard:arm64

docker/build-offline.sh builds the arm64 image as it builds the amd64 one (docker/Dockerfile,
FROM scratch, with the cross-compiled binary: nothing in it runs at build time), and the
classic builder labels every image it makes with this machine's architecture. The image's
files are right; only that label is not. This rewrites the label, nothing else.
"""

import hashlib
import io
import json
import subprocess
import sys
import tarfile


def main():
    image, arch, tag = sys.argv[1:4]
    saved = subprocess.run(["docker", "save", image], capture_output=True, check=True).stdout
    source = tarfile.open(fileobj=io.BytesIO(saved))
    [entry] = json.load(source.extractfile("manifest.json"))
    config = json.load(source.extractfile(entry["Config"]))
    config["architecture"] = arch
    if arch == "arm64":
        config["variant"] = "v8"
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": entry["Layers"]}]

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as target:
        for member in source.getmembers():
            if member.name in ("manifest.json", "repositories", entry["Config"]):
                continue
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        for name, data in [(config_name, config_bytes),
                           ("manifest.json", json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "load", "--quiet"], input=out.getvalue(), check=True,
                   stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
