"""The download path, for real, against a local HTTP server on 127.0.0.1 serving the real file."""
import http.server
import socket
import threading
from pathlib import Path

import pytest

from vtlib.data import DataFileError, download_file, ensure_file, md5sum, medmnist3d

MD5 = "bbd3c5a5576322bc4cdfea780653b1ce"  # medmnist.INFO["adrenalmnist3d"]["MD5"]


@pytest.fixture(scope="module")
def server(adrenal_path):
    payload = Path(adrenal_path).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
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
    monkeypatch.setattr(medmnist3d, "_VERIFIED", set())


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
    monkeypatch.setattr(medmnist3d, "_VERIFIED", set())
    bad = bytearray(Path(adrenal_path).read_bytes())
    bad[-10] ^= 0xFF
    (tmp_path / "adrenalmnist3d.npz").write_bytes(bytes(bad))
    with pytest.raises(DataFileError, match="corrupted"):
        ensure_file("adrenal", 28, root=tmp_path, download=False)
