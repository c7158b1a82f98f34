"""vaeutils.idx: one IDX file read and checked against its header, the four files of a split checked against each
other, and the network check (asked once, with a short timeout)."""

import functools
import http.server
import socket
import threading

import pytest
import torch

from vaeutils import idx


@pytest.mark.parametrize("content, message", [
    (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
    (b"PK\x03\x04 not an idx file at all", "not an MNIST-style IDX file"),
    (b"", "not an MNIST-style IDX file"),
    (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\x00" * 4, "expected unsigned bytes"),
])
def test_corrupt_files_raise_clear_value_errors(tmp_path, content, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        idx.read_idx(path, fix="copy a fresh file")
    assert str(path) in str(err.value) and "copy a fresh file" in str(err.value)


def test_missing_file_and_count_mismatch(tmp_path, tiny_split, write_idx):
    with pytest.raises(FileNotFoundError, match="nothing-here.*does not exist"):
        idx.read_idx(tmp_path / "nothing-here")
    tiny_split(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.zeros(5))
    files = {k: tmp_path / n for k, n in idx.IDX_FILES.items()}
    with pytest.raises(ValueError, match="6 images but .* 5 labels"):
        idx.idx_split(files, "fix it")


def test_check_split_names_every_mismatch():
    shapes = {"train_x": (12, 28, 28), "train_y": (12,), "test_x": (4, 28, 28), "test_y": (4,)}
    names = {k: f"{k}.idx" for k in shapes}
    idx.check_split(shapes, names, "fix it")  # a good split passes
    for change, message in [({"test_y": (3,)}, "test_x.idx has 4 images but test_y.idx has 3 labels; fix it"),
                            ({"test_x": (4, 20, 20)}, "train images are 28x28 but test_x.idx holds 20x20"),
                            ({"train_y": (12, 28, 28)}, "train_y.idx holds images"),
                            ({"test_x": (0, 28, 28), "test_y": (0,)}, "test_x.idx holds no images")]:
        with pytest.raises(ValueError, match=message):
            idx.check_split({**shapes, **change}, names, "fix it")



def test_network_check_gives_up_on_silence_and_remembers(monkeypatch):
    """A server that takes the connection but never answers (on loopback): the check times out, says False,
    and asks that host no more in this session."""
    monkeypatch.setattr(idx, "_reachable", {})
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the handshake completes in the backlog; nothing ever replies
        base = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert idx.network_available(f"{base}/mnist.gz", timeout=0.5) is False
        assert idx._reachable == {"127.0.0.1": False}
        assert idx.network_available(f"{base}/other.gz", timeout=0.5) is False  # remembered, not asked again


def test_network_check_wants_the_file_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "_reachable", {})
    (tmp_path / "here.gz").write_bytes(b"x")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert idx.network_available(f"{base}/here.gz") is True
        monkeypatch.setattr(idx, "_reachable", {})
        assert idx.network_available(f"{base}/missing.gz") is False  # a 404 is no download
        server.shutdown()
