"""Replacing the scenario files a running API and worker read, without them ever loading half a set.

The directory keeps its inode (it is often bind-mounted into containers, where a swapped directory
would go unseen): files are staged in a hidden folder inside it, then renamed into place one by one.
A generation counter in ``.relance-generation`` is odd while files are being renamed; the registry
(relance.scenarios.registry) keeps serving the set it has while the counter is odd, and only keeps a
set read between two identical even readings.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from relance.scenarios.loader import scenario_files

GENERATION_FILE = ".relance-generation"
LOCK_FILE = ".relance-apply.lock"
HISTORY_DIR = ".history"
# An odd counter older than this was left by an apply that died: readers stop waiting for it.
STALE_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Generation:
    value: int
    in_progress: bool


@dataclass
class Applied:
    target: Path
    backup: Path | None  # None when the target had no scenario file
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def read_generation(directory: Path) -> Generation:
    path = Path(directory) / GENERATION_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
        age = time.time() - path.stat().st_mtime
    except (OSError, UnicodeDecodeError):
        return Generation(0, False)
    value = int(text) if text.isdigit() else 0
    return Generation(value, value % 2 == 1 and age < STALE_AFTER_SECONDS)


def _write_generation(directory: Path, value: int) -> None:
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f"{GENERATION_FILE}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(f"{value}\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, Path(directory) / GENERATION_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def replacing(directory: Path) -> Iterator[None]:
    """Marks the directory's files as being replaced (odd counter) for the duration of the block."""
    current = read_generation(directory).value
    started = current + 1 if current % 2 == 0 else current + 2  # an interrupted apply left it odd
    _write_generation(directory, started)
    try:
        yield
    finally:
        _write_generation(directory, started + 1)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One apply at a time per directory."""
    import fcntl  # POSIX only; readers (the registry) import this module on any system

    with open(Path(directory) / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup_dir(target: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    history = target / HISTORY_DIR
    candidate, n = history / stamp, 1
    while candidate.exists():
        n += 1
        candidate = history / f"{stamp}-{n}"
    return candidate


def apply_files(sources: list[Path], target: Path, now: datetime | None = None) -> Applied:
    """Makes ``target``'s scenario files exactly ``sources`` (by name), keeping the old ones in .history."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        old = scenario_files(target)
        result = Applied(target, None)
        if old:
            result.backup = _backup_dir(target, now or datetime.now(UTC))
            result.backup.mkdir(parents=True)
            for path in old:
                shutil.copy2(path, result.backup / path.name)
        staging = Path(tempfile.mkdtemp(dir=target, prefix=".apply-"))  # hidden: never read as a scenario
        try:
            for source in sources:
                staged = staging / source.name
                staged.write_bytes(source.read_bytes())
                os.chmod(staged, 0o644)
                with open(staged, "rb") as handle:
                    os.fsync(handle.fileno())
            names = {s.name for s in sources}
            with replacing(target):
                try:
                    for source in sources:
                        os.replace(staging / source.name, target / source.name)
                        result.written.append(source.name)
                    for path in old:
                        if path.name not in names:
                            path.unlink()
                            result.removed.append(path.name)
                except BaseException:
                    _restore(target, result.backup, names)
                    raise
                _fsync_dir(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return result


def _restore(target: Path, backup: Path | None, names: set[str]) -> None:
    """Puts the previous set back after a failed replacement (still inside the odd counter)."""
    kept = {p.name for p in backup.iterdir()} if backup else set()
    for name in names - kept:
        with contextlib.suppress(OSError):
            (target / name).unlink()
    if backup is None:
        return
    for name in kept:
        with contextlib.suppress(OSError):
            shutil.copy2(backup / name, target / name)
