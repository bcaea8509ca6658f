"""TimescaleDB for the machine's PostgreSQL: the pinned release, built from source when missing.

Debian 12 packages no TimescaleDB for PostgreSQL 15, so setup builds the release tag's source
archive, read from the source cache or downloaded, after checking it against the pinned digest,
with the project's patches (infra/patches/timescaledb-VERSION-*.patch) applied.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings
from infra import procs

log = logging.getLogger(__name__)

# The pin: the release's archive and its digest (of `git archive --prefix=timescaledb-VERSION/
# VERSION`, GitHub's tag archive), in sha256sum's format so the Docker image checks it too.
PIN_FILE = PROJECT_ROOT / "infra" / "timescaledb.sha256"
SHA256, ARCHIVE = PIN_FILE.read_text().split()
VERSION = ARCHIVE.removeprefix("timescaledb-").removesuffix(".tar.gz")
URL = f"https://github.com/timescale/timescaledb/archive/refs/tags/{VERSION}.tar.gz"
DOWNLOAD_TIMEOUT_S = 120
PATCHES_DIR = PROJECT_ROOT / "infra" / "patches"
BUILD_FLAGS = (
    "-DREGRESS_CHECKS=OFF",
    "-DTAP_CHECKS=OFF",
    "-DWARNINGS_AS_ERRORS=OFF",
    "-DGENERATE_DOWNGRADE_SCRIPT=OFF",
)


def _pg_config(settings: Settings, flag: str) -> Path:
    out = subprocess.run(
        [str(settings.pg_bin_dir / "pg_config"), flag], text=True, check=True, capture_output=True
    )
    return Path(out.stdout.strip())


def patches() -> list[Path]:
    """The project's patches to the pinned release, in the order they apply."""
    return sorted(PATCHES_DIR.glob(f"timescaledb-{VERSION}-*.patch"))


def _patches_digest() -> str:
    sha = hashlib.sha256()
    for patch in patches():
        sha.update(patch.name.encode() + b"\0" + patch.read_bytes())
    return sha.hexdigest()


def _build_marker(settings: Settings) -> Path:
    # Beside the library: says which patches the installed build has, so a build without
    # them (a plain `make install`, an older checkout) is rebuilt.
    return _pg_config(settings, "--pkglibdir") / f"timescaledb-{VERSION}.broker-patches"


def installed(settings: Settings) -> bool:
    """True when the pinned release, with the project's patches, is in PostgreSQL's folders."""
    library = _pg_config(settings, "--pkglibdir") / f"timescaledb-{VERSION}.so"
    control = _pg_config(settings, "--sharedir") / "extension" / "timescaledb.control"
    marker = _build_marker(settings)
    if not (library.exists() and control.exists() and marker.exists()):
        return False
    return (
        f"default_version = '{VERSION}'" in control.read_text()
        and marker.read_text().strip() == _patches_digest()
    )


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as archive:
        for block in iter(lambda: archive.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def source_archive(settings: Settings) -> Path:
    """The checked source archive: from the cache, else downloaded into it."""
    cached = settings.source_cache_dir / ARCHIVE
    if not cached.exists():
        log.info("%s not in %s; downloading %s", ARCHIVE, settings.source_cache_dir, URL)
        settings.source_cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        with (
            urllib.request.urlopen(URL, timeout=DOWNLOAD_TIMEOUT_S) as answer,
            partial.open("wb") as out,
        ):
            shutil.copyfileobj(answer, out)
        partial.rename(cached)
    digest = _digest(cached)
    if digest != SHA256:
        raise procs.InfraError(f"{cached} has sha256 {digest}, expected {SHA256}")
    return cached


def _build(settings: Settings, archive: Path, workdir: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    source = workdir / f"timescaledb-{VERSION}"
    pg_config = f"-DPG_CONFIG={settings.pg_bin_dir / 'pg_config'}"
    jobs = str(os.cpu_count() or 1)
    steps = [["patch", "-p1", "--forward", "--batch", "-i", str(p)] for p in patches()]
    steps += [
        ["./bootstrap", *BUILD_FLAGS, pg_config],
        ["make", "-C", "build", "-j", jobs, "install"],
    ]
    for argv in steps:
        result = subprocess.run(argv, cwd=source, text=True, check=False, capture_output=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise procs.InfraError(f"{' '.join(argv)} failed:\n{tail}")


def ensure(settings: Settings) -> str:
    """Install the pinned release unless present; say which was the case."""
    if installed(settings):
        return f"TimescaleDB {VERSION} already installed"
    archive = source_archive(settings)
    log.info("building TimescaleDB %s from %s (about a minute on 2 cores)", VERSION, archive)
    with tempfile.TemporaryDirectory(prefix="timescaledb-") as workdir:
        _build(settings, archive, Path(workdir))
    _build_marker(settings).write_text(_patches_digest() + "\n")
    if not installed(settings):
        raise procs.InfraError(
            f"TimescaleDB {VERSION} built, but not found in PostgreSQL's folders"
        )
    return f"TimescaleDB {VERSION} installed"
