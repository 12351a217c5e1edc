"""The on-disk discipline every model build here follows: staged, locked, swapped in, hashed.

A build is written to a temporary sibling of its folder and renamed into place, under a
lock shared by all processes, and carries a MANIFEST.json (sha256 + size of each file), so
a crash never leaves a folder that looks complete. Verification hashes each file once and
then trusts size + mtime + inode, recorded in a small cache beside the manifest;
`verify(..., deep=True)` always rehashes.

A model folder's own manifest covers its weights and configuration; each export subfolder
(`onnx/`, `openvino/`) has its own, so an export can be added or rebuilt without touching
the folder it came from. `weights_fingerprint` condenses those manifests into the short hash
that names an encoder (and so keys every cache of its vectors).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST_NAME = "MANIFEST.json"
VERIFY_CACHE_NAME = ".verified.json"
ONNX_SUBDIR = "onnx"
OPENVINO_SUBDIR = "openvino"
EXPORT_SUBDIRS = (ONNX_SUBDIR, OPENVINO_SUBDIR)


class ModelStoreError(RuntimeError):
    """The packaged weights or a materialized folder are not what we expect."""


# --------------------------------------------------------------------------- manifests


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed_files(root: Path, subdir: str | None) -> list[Path]:
    base = root / subdir if subdir else root
    files = []
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.name in (MANIFEST_NAME, VERIFY_CACHE_NAME):
            continue
        relative = path.relative_to(root)
        # The fp32 manifest leaves the exports to their own manifests.
        if subdir is None and relative.parts[0] in EXPORT_SUBDIRS:
            continue
        files.append(path)
    return files


def write_manifest(root: Path, *, subdir: str | None = None, extra: dict | None = None) -> Path:
    """Record sha256 and size of every file under `root` (or `root/subdir`)."""
    entries = {}
    for path in _listed_files(root, subdir):
        entries[path.relative_to(root).as_posix()] = {
            "sha256": sha256_file(path),
            "size": path.stat().st_size,
        }
    manifest_dir = root / subdir if subdir else root
    manifest = {"files": entries, **(extra or {})}
    manifest_path = manifest_dir / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest_path


def _stat_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def verify(root: Path, *, subdir: str | None = None, deep: bool = False) -> bool:
    """True when every file listed in the manifest exists with the recorded size and hash.

    A file is hashed again only when its size, mtime or inode changed since it last
    verified (or always with `deep=True`), so repeated checks of a healthy 470 MB folder
    cost a few stat calls.
    """
    manifest_dir = root / subdir if subdir else root
    manifest_path = manifest_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
        entries: dict[str, dict] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not entries:
        return False
    cache_path = manifest_dir / VERIFY_CACHE_NAME
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    manifest_key = _stat_key(manifest_path)
    if cache.get("manifest") != manifest_key:
        cache = {}
    checked: dict[str, list[int]] = {}
    for relative, expected in entries.items():
        path = root / relative
        if not path.is_file() or path.stat().st_size != expected["size"]:
            return False
        key = _stat_key(path)
        needs_hash = deep or cache.get("files", {}).get(relative) != key
        if needs_hash and sha256_file(path) != expected["sha256"]:
            return False
        checked[relative] = key
    # A read-only folder still verifies, just without the shortcut next time.
    with contextlib.suppress(OSError):
        cache_path.write_text(json.dumps({"manifest": manifest_key, "files": checked}))
    return True


def read_manifest(root: Path, *, subdir: str | None = None) -> dict:
    manifest_dir = root / subdir if subdir else root
    return json.loads((manifest_dir / MANIFEST_NAME).read_text())


# --------------------------------------------------------------------------- building


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A temporary sibling of `target` (same filesystem, so the final rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; the model is not a secret
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Serialise builds of one folder across processes (test workers, web workers)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_dir(staging: Path, target: Path) -> None:
    """Swap `staging` into `target`, discarding whatever broken folder was there."""
    if target.exists():
        trash = target.parent / f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(target, trash)
        os.replace(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, target)


# --------------------------------------------------------------------------- fingerprints


def weights_fingerprint(model_dir: Path, export_file: str | None) -> str:
    """Short hash of the weights (from the MANIFEST.json files when present), so cache keys
    change whenever the files do: the folder's own weights, plus the export that runs, if
    any (an OpenVINO .xml with its .bin)."""
    exported: set[str] = set()
    if export_file:
        exported = {export_file, Path(export_file).with_suffix(".bin").as_posix()}

    def counts(name: str) -> bool:
        if name.split("/")[0] in EXPORT_SUBDIRS:
            return name in exported
        return name.endswith((".safetensors", ".bin"))

    digest = hashlib.sha256()
    for manifest_dir in (model_dir, *(model_dir / sub for sub in EXPORT_SUBDIRS)):
        manifest_path = manifest_dir / MANIFEST_NAME
        if manifest_path.is_file():
            files = json.loads(manifest_path.read_text()).get("files", {})
            for name in sorted(files):
                if counts(name):
                    digest.update(f"{name}:{files[name]['sha256']}".encode())
    if digest.digest() == hashlib.sha256().digest():
        # No manifest: names, sizes and mtimes of the weight files, by the rule this had
        # before OpenVINO exports existed (so those names stay), never counting an OpenVINO
        # export that does not run or another build's staging folder (a dot name).
        for path in sorted(model_dir.rglob("*")):
            relative = path.relative_to(model_dir).as_posix()
            if not path.is_file() or relative.startswith(".") or "/." in relative:
                continue
            if relative.startswith(f"{OPENVINO_SUBDIR}/"):
                counted = relative in exported
            else:
                counted = path.suffix in (".safetensors", ".bin", ".onnx")
            if counted:
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:8]
