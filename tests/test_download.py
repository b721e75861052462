"""The download path, for real, against a local HTTP server on 127.0.0.1 serving the real file."""
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from vtlib.data import DataFileError, download_file, ensure_file, load_split, md5sum, medmnist3d
from vtlib.errors import VtlibError

MD5 = "bbd3c5a5576322bc4cdfea780653b1ce"  # medmnist.INFO["adrenalmnist3d"]["MD5"]


@pytest.fixture(scope="module")
def server(adrenal_path):
    payload = Path(adrenal_path).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/slow"):          # a server that trickles: 1 KiB every 50 ms
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    for i in range(0, len(payload), 1024):
                        self.wfile.write(payload[i:i + 1024])
                        self.wfile.flush()
                        time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            if self.path.startswith("/missing"):
                self.send_error(404)
                return
            body = payload
            if self.path.startswith("/corrupt"):
                body = bytearray(payload)
                body[1000] ^= 0xFF          # same length, one byte changed
                body = bytes(body)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.path.startswith("/truncated"):
                self.wfile.write(body[: len(body) // 3])   # then close: fewer bytes than promised
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_success(server, tmp_path):
    dest = download_file(f"{server}/adrenalmnist3d.npz", tmp_path / "adrenalmnist3d.npz", md5=MD5,
                         progress=False)
    assert md5sum(dest) == MD5
    assert leftovers(tmp_path) == ["adrenalmnist3d.npz"]


def test_md5_mismatch_leaves_nothing(server, tmp_path):
    with pytest.raises(DataFileError, match="MD5 mismatch"):
        download_file(f"{server}/corrupt.npz", tmp_path / "a.npz", md5=MD5, progress=False)
    assert leftovers(tmp_path) == []


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    with pytest.raises(DataFileError, match="truncated|broke off"):
        download_file(f"{server}/truncated.npz", tmp_path / "a.npz", md5=MD5, progress=False)
    assert leftovers(tmp_path) == []


def test_http_error_leaves_nothing(server, tmp_path):
    with pytest.raises(DataFileError, match="could not download a.npz"):
        download_file(f"{server}/missing.npz", tmp_path / "a.npz", md5=MD5, progress=False)
    assert leftovers(tmp_path) == []


def test_existing_file_is_kept_when_download_fails(server, tmp_path):
    dest = tmp_path / "a.npz"
    dest.write_bytes(b"previous")
    with pytest.raises(DataFileError):
        download_file(f"{server}/corrupt.npz", dest, md5=MD5, progress=False)
    assert dest.read_bytes() == b"previous"
    assert leftovers(tmp_path) == ["a.npz"]


def _use_url(monkeypatch, url):
    monkeypatch.setattr(medmnist3d.DatasetInfo, "url", lambda self, size=28: url)
    monkeypatch.setattr(medmnist3d, "_VERIFIED", {})


def test_ensure_file_downloads_into_root(server, tmp_path, monkeypatch):
    _use_url(monkeypatch, f"{server}/adrenalmnist3d.npz")
    path = ensure_file("adrenal", 28, root=tmp_path, progress=False)
    assert path == tmp_path / "adrenalmnist3d.npz" and md5sum(path) == MD5


def test_offline_error_names_file_url_and_folder(tmp_path, monkeypatch):
    with socket.socket() as s:          # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/adrenalmnist3d.npz"
    _use_url(monkeypatch, url)
    with pytest.raises(DataFileError) as err:
        ensure_file("adrenal", 28, root=tmp_path, progress=False)
    msg = str(err.value)
    assert "adrenalmnist3d.npz" in msg and url in msg and str(tmp_path) in msg
    assert leftovers(tmp_path) == []


def test_no_download_error_names_file_url_and_folder(tmp_path):
    with pytest.raises(DataFileError) as err:
        ensure_file("adrenal", 64, root=tmp_path, download=False)
    msg = str(err.value)
    assert "adrenalmnist3d_64.npz" in msg and "zenodo" in msg and str(tmp_path) in msg


def test_corrupted_local_file_is_reported(tmp_path, adrenal_path, monkeypatch):
    monkeypatch.setattr(medmnist3d, "_VERIFIED", {})
    bad = bytearray(Path(adrenal_path).read_bytes())
    bad[-10] ^= 0xFF
    (tmp_path / "adrenalmnist3d.npz").write_bytes(bytes(bad))
    with pytest.raises(DataFileError, match="corrupted"):
        ensure_file("adrenal", 28, root=tmp_path, download=False)


# --------------------------------------------------------------- whole-transfer timeout, leftovers, mode, mirror
def test_timeout_bounds_the_whole_transfer(server, tmp_path):
    """Every socket read gets data within 50 ms, so only a deadline on the transfer can stop it."""
    start = time.monotonic()
    with pytest.raises(DataFileError, match="timeout=0.5"):
        download_file(f"{server}/slow.npz", tmp_path / "a.npz", md5=MD5, progress=False, timeout=0.5)
    assert time.monotonic() - start < 5
    assert leftovers(tmp_path) == []


def test_ensure_file_and_load_split_take_a_timeout(server, tmp_path, monkeypatch):
    _use_url(monkeypatch, f"{server}/slow.npz")
    with pytest.raises(DataFileError, match="timeout=0.3"):
        ensure_file("adrenal", 28, root=tmp_path, progress=False, timeout=0.3)
    with pytest.raises(DataFileError, match="timeout=0.3"):
        load_split("adrenal", "test", 28, root=tmp_path, timeout=0.3)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("timeout", [0, -1, "60", None, True])
def test_bad_timeout_is_named(tmp_path, timeout):
    with pytest.raises(DataFileError, match="timeout"):
        download_file("http://127.0.0.1:9/a.npz", tmp_path / "a.npz", progress=False, timeout=timeout)


def test_stale_part_files_of_a_killed_download_are_removed(server, tmp_path):
    dead = tmp_path / ".adrenalmnist3d.npz.k1ll3d.part"     # left by a process killed hours ago
    dead.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(dead, (old, old))
    live = tmp_path / ".adrenalmnist3d.npz.l1v3.part"       # another process writing right now
    live.write_bytes(b"busy")
    other = tmp_path / ".other.npz.x.part"                  # not ours: left alone
    other.write_bytes(b"x")
    os.utime(other, (old, old))
    download_file(f"{server}/adrenalmnist3d.npz", tmp_path / "adrenalmnist3d.npz", md5=MD5, progress=False)
    assert leftovers(tmp_path) == sorted([".adrenalmnist3d.npz.l1v3.part", ".other.npz.x.part", "adrenalmnist3d.npz"])


def test_downloaded_file_gets_normal_permissions(server, tmp_path):
    previous = os.umask(0o022)
    try:
        dest = download_file(f"{server}/adrenalmnist3d.npz", tmp_path / "a.npz", md5=MD5, progress=False)
    finally:
        os.umask(previous)
    assert dest.stat().st_mode & 0o777 == 0o644


def test_mirror_from_the_environment_or_argument(server, tmp_path, monkeypatch):
    monkeypatch.setattr(medmnist3d, "_VERIFIED", {})
    monkeypatch.setenv("VTLIB_DATA_URL", f"{server}/")
    path = ensure_file("adrenal", 28, root=tmp_path, progress=False)
    assert md5sum(path) == MD5
    path.unlink()
    monkeypatch.setenv("VTLIB_DATA_URL", "http://127.0.0.1:9/nothing-here")
    path = ensure_file("adrenal", 28, root=tmp_path, progress=False, mirror=server)   # the argument wins
    assert md5sum(path) == MD5


@pytest.mark.parametrize("mirror", ["ftp://example.org/x", "127.0.0.1:8000"])
def test_bad_mirror_is_named(tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("VTLIB_DATA_URL", mirror)
    with pytest.raises(VtlibError, match="VTLIB_DATA_URL: expected a base URL"):
        ensure_file("adrenal", 28, root=tmp_path, progress=False)


def test_file_replaced_after_its_check_is_checked_again(tmp_path, adrenal_path, monkeypatch):
    monkeypatch.setattr(medmnist3d, "_VERIFIED", {})
    good = Path(adrenal_path).read_bytes()
    dest = tmp_path / "adrenalmnist3d.npz"
    dest.write_bytes(good)
    assert ensure_file("adrenal", 28, root=tmp_path, download=False) == dest
    bad = bytearray(good)
    bad[-10] ^= 0xFF
    replacement = tmp_path / "new.npz"
    replacement.write_bytes(bytes(bad))
    os.replace(replacement, dest)                # same name, another file
    with pytest.raises(DataFileError, match="corrupted"):
        ensure_file("adrenal", 28, root=tmp_path, download=False)


def test_root_that_is_a_file_gets_a_fix_that_fits(tmp_path):
    f = tmp_path / "adrenalmnist3d.npz"
    f.write_bytes(b"x")
    with pytest.raises(VtlibError) as err:
        ensure_file("adrenal", 28, root=f, download=False)
    msg = str(err.value)
    assert "the file" in msg and str(tmp_path) in msg and "mkdir" not in msg
