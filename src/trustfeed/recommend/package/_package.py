"""An algorithm package: a directory of plain files, content-addressed by its manifest.

Layout (no pickle anywhere: JSON, and npz read with ``allow_pickle=False``)::

    PKG/
      manifest.json    canonical JSON: format, name, version, and every file's size + SHA-256
      signature.note   the licensor's Ed25519 signature (C2SP signed note) over the package id
      config.json      the algorithm configuration (see ``_config``)
      weights/…        optional initial weights: a saved Recommender (``Recommender.save``)

The package id is the SHA-256 of ``manifest.json``'s bytes, which must be in
canonical form; so one changed byte of any file changes a hash in the
manifest, hence the id, hence what the signature covers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trustfeed.recommend._config import RecommenderConfig
from trustfeed.recommend.package._canonical import (
    canonical_json,
    check_relative_path,
    is_sha256_hex,
    read_tree,
    sha256_hex,
)
from trustfeed.recommend.package._config import AlgorithmConfig, parse_config
from trustfeed.recommend.package._errors import IntegrityError, PackageError

PACKAGE_FORMAT = "trustfeed.algorithm-package/v1"
MANIFEST = "manifest.json"
SIGNATURE = "signature.note"
CONFIG = "config.json"
WEIGHTS = "weights/"
#: The saved model's header inside ``weights/`` (written by ``Recommender.save``).
WEIGHTS_HEADER = WEIGHTS + "recommender.json"
_UNLISTED = frozenset({MANIFEST, SIGNATURE})


@dataclass(frozen=True)
class Package:
    """A package whose files matched its manifest when it was read (see :meth:`from_files`).

    Holds the bytes it checked, so what is later approved or built is exactly
    what was hashed, whatever happens to the directory meanwhile.
    """

    id: str
    name: str
    version: str
    manifest_bytes: bytes
    files: Mapping[str, bytes]
    config: AlgorithmConfig
    signature: str | None = None
    source: Path | None = None

    @classmethod
    def open(cls, path: str | Path) -> Package:
        """Read and check the package directory at ``path``."""
        root = Path(path)
        if not root.exists():
            raise PackageError(f"no package at {root}")
        try:
            files = read_tree(root)
        except OSError as exc:
            raise PackageError(f"cannot read package {root}: {exc}") from exc
        return cls.from_files(files, source=root)

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], *, source: Path | None = None) -> Package:
        """Check a package given as ``{relative path: bytes}``.

        1. ``manifest.json`` is present, canonical JSON, and well formed.
        2. Every listed file is present with the listed size and SHA-256, and
           no file is present that the manifest does not list.
        3. ``config.json`` is listed and valid for this engine.
        4. Initial weights, if any, were saved with the seed and configuration
           the package declares (the review shows the configuration, so it
           must be the one the weights run with).
        """
        manifest_bytes = files.get(MANIFEST)
        if manifest_bytes is None:
            raise IntegrityError(f"not a package: no {MANIFEST}")
        manifest = parse_manifest(manifest_bytes)
        listed = check_files(manifest, files)
        config = parse_config(listed[CONFIG])
        if manifest["name"] != config.name or manifest["version"] != config.version:
            raise IntegrityError("manifest and config.json disagree on name or version")
        _check_weights(config, listed)
        signature = files.get(SIGNATURE)
        return cls(
            id=sha256_hex(manifest_bytes),
            name=config.name,
            version=config.version,
            manifest_bytes=manifest_bytes,
            files=MappingProxyType(dict(listed)),
            config=config,
            signature=_text(signature, SIGNATURE) if signature is not None else None,
            source=source,
        )

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads(self.manifest_bytes)
        return manifest

    @property
    def config_text(self) -> str:
        """``config.json`` as text (it parsed as JSON, so it is UTF-8)."""
        return self.files[CONFIG].decode("utf-8")

    def digests(self) -> dict[str, str]:
        """Path → SHA-256 of every listed file (what the review compares)."""
        return {entry["path"]: entry["sha256"] for entry in self.manifest["files"]}

    @property
    def weight_files(self) -> dict[str, bytes]:
        """The initial weights, by path relative to ``weights/`` (empty when none)."""
        return {p[len(WEIGHTS) :]: data for p, data in self.files.items() if p.startswith(WEIGHTS)}

    def all_files(self) -> dict[str, bytes]:
        """Every file of the package as it was read, manifest and signature included."""
        out = {**self.files, MANIFEST: self.manifest_bytes}
        if self.signature is not None:
            out[SIGNATURE] = self.signature.encode("utf-8")
        return out


def parse_manifest(data: bytes) -> dict[str, Any]:
    """The manifest, refused unless it is canonical JSON of the expected shape."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{MANIFEST} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
        raise IntegrityError(f"{MANIFEST} is not a {PACKAGE_FORMAT} manifest")
    if canonical_json(manifest) != data:
        # Why: the id hashes these bytes; two spellings of one manifest would give two ids.
        raise IntegrityError(f"{MANIFEST} is not in canonical form (re-run `package build`)")
    if set(manifest) != {"format", "name", "version", "files"}:
        raise IntegrityError(f"{MANIFEST} has unexpected fields: {sorted(manifest)}")
    _check_entries(manifest["files"])
    return manifest


def _check_entries(entries: object) -> None:
    if not isinstance(entries, list) or not entries:
        raise IntegrityError(f"{MANIFEST} lists no files")
    paths = []
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and set(entry) == {"path", "sha256", "size"}
            and isinstance(entry["path"], str)
            and is_sha256_hex(entry["sha256"])
            and isinstance(entry["size"], int)
            and entry["size"] >= 0
        ):
            raise IntegrityError(f"{MANIFEST} has a malformed file entry: {entry!r}")
        paths.append(check_relative_path(entry["path"]))
    if paths != sorted(set(paths), key=lambda p: p.encode("utf-8")):
        raise IntegrityError(f"{MANIFEST} must list each file once, sorted by path")


def check_files(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The listed files' bytes, once each matches its size and SHA-256 and nothing is extra."""
    listed: dict[str, bytes] = {}
    for entry in manifest["files"]:
        path = entry["path"]
        if path in _UNLISTED:
            raise IntegrityError(f"{MANIFEST} may not list {path}")
        data = files.get(path)
        if data is None:
            raise IntegrityError(f"file {path} is listed in the manifest but missing")
        if len(data) != entry["size"] or sha256_hex(data) != entry["sha256"]:
            raise IntegrityError(f"file {path} was modified: its SHA-256 does not match")
        listed[path] = data
    extra = sorted(set(files) - set(listed) - _UNLISTED)
    if extra:
        raise IntegrityError(f"files not in the manifest: {', '.join(extra)}")
    if CONFIG not in listed:
        raise IntegrityError(f"the package has no {CONFIG}")
    return listed


def _check_weights(config: AlgorithmConfig, listed: Mapping[str, bytes]) -> None:
    if not any(path.startswith(WEIGHTS) for path in listed):
        return
    header_bytes = listed.get(WEIGHTS_HEADER)
    if header_bytes is None:
        raise PackageError(f"weights/ holds no saved model ({WEIGHTS_HEADER} is missing)")
    try:
        header = json.loads(header_bytes)
        saved = RecommenderConfig(**header["config"])
        seed = header["seed"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{WEIGHTS_HEADER} is not a saved Recommender header: {exc}") from exc
    if seed != config.seed or saved != config.engine_config():
        raise PackageError(
            "the initial weights were saved with another seed or configuration than "
            "config.json declares"
        )


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"{name} is not UTF-8 text") from exc


# ----------------------------------------------------------------------------- building


def build_package(source: str | Path, out: str | Path) -> Package:
    """Write a package from ``source`` (``config.json`` and optionally ``weights/``) to ``out``.

    The licensor runs this; ``out`` must not exist yet (a package is never
    rebuilt in place, so a signed one cannot be silently changed).
    """
    src, dest = Path(source), Path(out)
    files = read_tree(src)
    stray = sorted(p for p in files if p != CONFIG and not p.startswith(WEIGHTS))
    if stray:
        raise PackageError(f"only {CONFIG} and {WEIGHTS} belong in a package; found {stray}")
    if CONFIG not in files:
        raise PackageError(f"{src} has no {CONFIG}")
    config = parse_config(files[CONFIG])
    _check_weights(config, files)
    manifest = manifest_for(config, files)
    if dest.exists():
        raise PackageError(f"{dest} exists; refusing to overwrite a package")
    _write(dest, {**files, MANIFEST: manifest})
    return Package.open(dest)


def manifest_for(config: AlgorithmConfig, files: Mapping[str, bytes]) -> bytes:
    """The canonical manifest listing ``files`` (every file except manifest and signature)."""
    entries = [
        {"path": check_relative_path(p), "sha256": sha256_hex(files[p]), "size": len(files[p])}
        for p in sorted(files, key=lambda n: n.encode("utf-8"))
        if p not in _UNLISTED
    ]
    return canonical_json(
        {"format": PACKAGE_FORMAT, "name": config.name, "version": config.version, "files": entries}
    )


def _write(dest: Path, files: Mapping[str, bytes]) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    for name, data in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    tmp.rename(dest)  # whole package or none: a half-written one is never left at ``dest``
