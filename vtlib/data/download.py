"""Downloads that never leave a half-written file behind.

The file is streamed into a temporary file in the destination folder, its size and MD5 are
checked, and only then is it renamed into place. Any failure (network error, truncated
transfer, checksum mismatch, Ctrl-C) deletes the temporary file and raises ``DataFileError``.
A process killed outright cannot clean up: the next download of the same file removes the
temporary files that nothing has written to for longer than the timeout.

``timeout`` bounds the whole transfer (a server that trickles bytes cannot stall it), and each
socket read too. The finished file gets the usual permissions (0666 minus the umask), not the
private 0600 of a temporary file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


class DataFileError(RuntimeError):
    """A data file is missing, corrupted, or could not be downloaded."""


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: str | os.PathLike, md5: str | None = None,
                  progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying the byte count and (if given) the MD5.

    ``timeout`` (seconds) bounds the whole transfer and every socket read. Raises DataFileError on
    any failure; ``dest`` is then untouched and no partial file remains.
    """
    dest = Path(dest)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise DataFileError(f"timeout: expected a positive number of seconds, got {timeout!r}. "
                            "Fix: pass e.g. timeout=60")
    if not dest.parent.is_dir():
        raise DataFileError(f"dest: folder {dest.parent} does not exist. Fix: create it first "
                            f"(mkdir -p {dest.parent}) or choose another data root.")
    remove_stale_parts(dest, older_than=timeout)
    deadline = time.monotonic() + timeout
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    ok = False
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError) as e:
                raise DataFileError(
                    f"could not download {dest.name} from {url} ({e}). Fix: check your connection, "
                    f"or download the file by hand and put it in {dest.parent}") from e
            with response:
                expected = response.headers.get("Content-Length")
                expected = int(expected) if expected is not None else None
                bar = _progress_bar(expected, dest.name, progress)
                received = 0
                try:
                    while True:
                        block = response.read(1 << 16)
                        if not block:
                            break
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"the whole transfer took longer than timeout={timeout} s")
                except (OSError, ValueError) as e:  # includes http.client.IncompleteRead
                    raise DataFileError(
                        f"transfer of {dest.name} from {url} broke off after {received} bytes ({e}). "
                        f"Fix: run again (or pass a larger timeout); nothing was written to {dest}") from e
                finally:
                    bar.close()
        if expected is not None and received != expected:
            raise DataFileError(
                f"truncated transfer of {dest.name} from {url}: expected {expected} bytes, got "
                f"{received}. Fix: run again; nothing was written to {dest}")
        if md5 is not None:
            got = md5sum(tmp)
            if got != md5:
                raise DataFileError(
                    f"MD5 mismatch for {dest.name} downloaded from {url}: expected {md5}, got {got}. "
                    f"Fix: run again; if it persists the server copy differs from the official "
                    f"release. Nothing was written to {dest}")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
        ok = True
        return dest
    finally:
        if not ok:
            tmp.unlink(missing_ok=True)


def remove_stale_parts(dest: str | os.PathLike, older_than: float) -> list[Path]:
    """Delete the temporary ``.<name>.*.part`` files of ``dest`` untouched for ``older_than`` seconds.

    A live download writes to its file continuously, so one that has been silent that long belongs
    to a process that was killed. Returns the files removed.
    """
    dest = Path(dest)
    now, removed = time.time(), []
    for part in dest.parent.glob(f".{dest.name}.*.part"):
        try:
            if now - part.stat().st_mtime > older_than:
                part.unlink()
                removed.append(part)
        except FileNotFoundError:  # another process finished or removed it meanwhile
            pass
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _progress_bar(total: int | None, name: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}",
                disable=not enabled, leave=False)
