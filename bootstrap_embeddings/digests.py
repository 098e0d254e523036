"""Digests that key caches and recipes: what identifies a file, a folder or a checkpoint.

Kept apart from the generator so that a stage hashing its inputs (adapter training, the
embedder, the strategies' recipes) does not import, and so depend on, the generation code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path, h) -> None:
    """Feed the bytes of one file to the hash `h`, a block at a time."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def content_digest(path: str | Path) -> str:
    """sha256 over the relative names and contents of every file under `path` (or of one file)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode() + b"\0")
        sha256_file(f, h)
    return h.hexdigest()


def model_digest(path: str | Path) -> str:
    """A cheap identity for a checkpoint folder: file names and sizes, and the JSON files' contents.

    Hashing gigabytes of weights on every run would cost more than it protects: a
    re-materialised base model with other weights but identical sizes and configs
    is not a case this pipeline produces. A hub id (paper scale) is its own identity.
    """
    path = Path(path)
    if not path.is_dir():
        return str(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{f.stat().st_size}\0".encode())
        if f.suffix == ".json":
            sha256_file(f, h)
    return h.hexdigest()
