"""Reliability probe: thousands of inputs, hand-written and drawn from a seeded generator, against the public
functions of vaeutils (and the kit's command line), each outcome classified the way the reliability reviews
(docs of shared/reviews/reliability-v*.md) count them:

* correct: no error, and the result agrees with an independent reference (torch.distributions in float64, a
  closed form, NumPy) where one is given, else at least finite;
* clear error: a ValueError or TypeError (or traitlets' TraitError for a widget) whose message names the
  argument (or, for the kit and the command line, the file or flag) and no traceback;
* silent wrong: no error but NaN/inf or a value that differs from the reference, or something changed that must
  not (a file outside the cache folder, a widget whose view disagrees with its slider);
* unclear crash: any other exception (or a traceback from a command line);
* hang: a call over the per-call time limit;
* refused valid: an error for an input marked valid.

Run: ``.venv/bin/python benchmarks/probe.py`` (CPU, tiny models, a few minutes on two cores). Prints one markdown
table row per area. ``--seed`` changes the generated inputs, ``--scale`` how many are drawn.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("VAELAB_DATA", tempfile.mkdtemp(prefix="vaelab-probe-"))
os.environ["VAELAB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from traitlets import TraitError  # noqa: E402

from vaeutils import cache, config, data, surgery, train  # noqa: E402
from vaeutils import disentangle as DS  # noqa: E402
from vaeutils import judge as J  # noqa: E402
from vaeutils import losses as L  # noqa: E402
from vaeutils import metrics as M  # noqa: E402
from vaeutils import objectives as O  # noqa: E402
from vaeutils.models import MLPVAE, SmallClassifier  # noqa: E402
from vaeutils.train import cli  # noqa: E402

AREAS = ["losses / objectives", "metrics, judge, disentangle, surgery", "data", "cache", "train", "CLI", "kit",
         "widgets"]
OUTCOMES = ["clear error", "correct", "silent wrong", "unclear crash", "hang", "refused valid"]
TIME_LIMIT = 20.0
NAN, INF = math.nan, math.inf


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


class Wrong(Exception):
    """Raised by a check: the result is silently wrong."""


def _non_finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() and not bool(torch.isfinite(value).all())
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f" and not bool(np.isfinite(value).all())
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    return False


class Probe:
    def __init__(self, verbose: bool = False):
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.examples: dict[tuple, list] = defaultdict(list)
        self.verbose = verbose

    def record(self, area, outcome, label, detail=""):
        self.counts[area][outcome] += 1
        if outcome in ("silent wrong", "unclear crash", "hang", "refused valid"):
            self.examples[(area, outcome)].append(f"{label}: {detail}"[:300])

    def call(self, area, label, fn, names, check=None, valid=None, allow_inf=False):
        """Run ``fn()``; ``names``: the argument names a clear error may name; ``check(result)`` raises Wrong;
        ``valid``: True (must not raise), False (must raise), None (either, judged by the message)."""
        signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                result = fn()
        except Hang:
            return self.record(area, "hang", label)
        except Wrong as err:
            return self.record(area, "silent wrong", label, str(err))
        except (ValueError, TypeError, TraitError) as err:
            signal.setitimer(signal.ITIMER_REAL, 0)
            text = str(err)
            named = any(n in text for n in names)
            plain = isinstance(err, (ValueError, TypeError)) or "trait" in text
            if valid is True:
                return self.record(area, "refused valid", label, f"{type(err).__name__}: {text}")
            if named and plain:
                return self.record(area, "clear error", label)
            return self.record(area, "unclear crash", label, f"{type(err).__name__}: {text}")
        except Exception as err:  # noqa: BLE001 - that is what the probe counts
            signal.setitimer(signal.ITIMER_REAL, 0)
            return self.record(area, "unclear crash", label, f"{type(err).__name__}: {err}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if valid is False:
            return self.record(area, "silent wrong", label, f"accepted: {str(result)[:120]}")
        try:
            if check is not None:
                check(result)
            elif not allow_inf and _non_finite(result):
                raise Wrong(f"non-finite result {str(result)[:120]}")
        except Wrong as err:
            return self.record(area, "silent wrong", label, str(err))
        except Exception as err:  # noqa: BLE001 - the reference could not even be computed (NaN inputs)
            return self.record(area, "silent wrong", label, f"no reference: {type(err).__name__}: {err}")
        return self.record(area, "correct", label)

    def table(self) -> str:
        lines = ["| area | tried | clear error | correct | silent wrong | unclear crash | refused valid | hang |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        total = Counter()
        for area in AREAS:
            c = self.counts[area]
            total.update(c)
            lines.append(f"| {area} | {sum(c.values()):,} | " + " | ".join(
                f"{c[o]:,}" for o in ("clear error", "correct", "silent wrong", "unclear crash", "refused valid",
                                      "hang")) + " |")
        lines.append(f"| **all** | {sum(total.values()):,} | " + " | ".join(
            f"{total[o]:,}" for o in ("clear error", "correct", "silent wrong", "unclear crash", "refused valid",
                                      "hang")) + " |")
        return "\n".join(lines)


def close(got, want, rel=1e-4, abs_=1e-3):
    got, want = float(got), float(want)
    if abs(want) > 3e38:  # beyond float32: inf is the right float32 answer
        if not (math.isinf(got) or abs(got) > 1e38):
            raise Wrong(f"got {got}, want about {want:.4g}")
        return
    if not math.isfinite(got) or abs(got - want) > abs_ + rel * abs(want):
        raise Wrong(f"got {got}, want {want}")


# ---------------------------------------------------------------------------------------------- generators

def floats(rng, bad=True):
    pool = [0.0, 1.0, -1.0, 0.5, 1e-3, 20.0, -20.0, 100.0, -100.0, 1e4, -1e4, 1e30, -1e30]
    if bad:
        pool += [NAN, INF, -INF, "1", None, True, [1.0], np.float32(0.5), np.int64(2)]
    return rng.choice(pool) if rng.random() < 0.6 else rng.uniform(-50, 50)


def tensors(rng, shape=(3, 1, 4, 4), low=0.0, high=1.0):
    """A tensor of ``shape`` in [low, high] (valid), or one of the ways it goes wrong."""
    kind = rng.choice(["ok"] * 6 + ["nan", "inf", "empty", "shape", "int", "numpy", "list", "none", "huge",
                                    "f64", "f16"])
    g = torch.Generator().manual_seed(rng.randrange(10**6))
    x = low + (high - low) * torch.rand(shape, generator=g)
    if kind in ("nan", "inf") and x.numel():
        x.view(-1)[rng.randrange(x.numel())] = NAN if kind == "nan" else INF
    elif kind == "empty":
        x = x[:0]
    elif kind == "shape":
        x = x.flatten()[:5]
    elif kind == "int":
        x = x.long()
    elif kind == "numpy":
        x = x.numpy()
    elif kind == "list":
        x = x.tolist()
    elif kind == "none":
        x = None
    elif kind == "huge":
        x = x * 1e30
    elif kind == "f64":
        x = x.double()
    elif kind == "f16":
        x = x.half()
    return kind, x


# ------------------------------------------------------------------------------------------------- losses

def probe_losses(p: Probe, rng: random.Random, n: int):
    area = "losses / objectives"
    dists = {"gaussian": (L.gaussian_nll, torch.distributions.Normal, "mean", "log_sigma"),
             "laplace": (L.laplace_nll, torch.distributions.Laplace, "loc", "log_scale")}
    for _ in range(n):
        which = rng.choice(["gaussian", "laplace", "bernoulli", "kl", "free_bits", "elbo", "geco", "gan"])
        shape = rng.choice([(2, 3), (3, 1, 4, 4), (4, 1, 2, 4)])
        if which in dists:
            nll, dist, loc_name, scale_name = dists[which]
            ka, a = tensors(rng, shape, -2, 2)
            kx, x = tensors(rng, shape, -2, 2)
            ks = rng.choice(["number", "number", "tensor", "batch"])
            s = floats(rng) if ks == "number" else (
                torch.full((shape[0],) + (1,) * (len(shape) - 1), float(rng.uniform(-150, 30)))
                if ks == "tensor" else torch.zeros(shape[0]))
            red = rng.choice(["none", "none", "sum", "mean", "avg"])

            def ref(out, a=a, x=x, s=s, red=red, dist=dist):
                a64, x64 = torch.as_tensor(a).double(), torch.as_tensor(x).double()
                s64 = torch.as_tensor(s, dtype=torch.float64).expand_as(x64)
                per = []
                for av, xv, sv in zip(a64.flatten(), x64.flatten(), s64.flatten()):
                    err = abs(float(xv - av))
                    ls = float(sv)
                    e = (math.log(err) - ls) * (2 if dist is torch.distributions.Normal else 1) if err else -INF
                    big = math.exp(e) if e < 700 else INF
                    const = 0.5 * math.log(2 * math.pi) if dist is torch.distributions.Normal else math.log(2)
                    per.append((big / 2 if dist is torch.distributions.Normal else big) + ls + const)
                    if abs(ls) < 30:  # the library's own comparison, where exp is tame
                        lp = -float(dist(av, math.exp(ls)).log_prob(xv))
                        close(per[-1], lp, 1e-9, 1e-9)
                rows = np.array(per).reshape(len(a64), -1).sum(1)
                want = rows if red == "none" else [rows.sum() if red == "sum" else rows.mean()]
                for g_, w_ in zip(torch.as_tensor(out).flatten().tolist(), want):
                    close(g_, w_, 1e-3, 1e-2)
            p.call(area, f"{which}_nll({ka}, {kx}, {ks}={s!r}, {red})", lambda nll=nll, a=a, x=x, s=s, red=red:
                   nll(a, x, s, reduction=red), [loc_name, "x", scale_name, "reduction"], check=ref,
                   allow_inf=True)
        elif which == "bernoulli":
            kl_, logits = tensors(rng, shape, -200, 200)
            kx, x = tensors(rng, shape, 0, 1)

            def ref(out, logits=logits, x=x):
                want = torch.nn.functional.binary_cross_entropy_with_logits(
                    torch.as_tensor(logits).double(), torch.as_tensor(x).double(), reduction="none")
                rows = want.flatten(1).sum(1) if want.dim() > 1 else want
                for g_, w_ in zip(out.tolist(), rows.tolist()):
                    close(g_, w_, 1e-4, 1e-2)
            p.call(area, f"bernoulli_nll({kl_}, {kx})", lambda logits=logits, x=x: L.bernoulli_nll(logits, x),
                   ["logits", "x"], check=ref)
        elif which in ("kl", "free_bits"):
            km, mu = tensors(rng, (4, 3), -3, 3)
            kv, lv = tensors(rng, (4, 3), -5, 5)
            fb = floats(rng)

            def ref(out, mu=mu, lv=lv, which=which, fb=fb):
                m64, v64 = torch.as_tensor(mu).double(), torch.as_tensor(lv).double()
                want = 0.5 * (m64.square() + v64.exp() - 1 - v64)
                if which == "kl":
                    for g_, w_ in zip(out.flatten().tolist(), want.flatten().tolist()):
                        close(g_, w_, 1e-4, 1e-5)
                else:
                    close(out, want.mean(0).clamp_min(float(fb)).sum(), 1e-4, 1e-4)
            if which == "kl":
                p.call(area, f"kl_per_dim({km}, {kv})", lambda mu=mu, lv=lv: L.kl_per_dim(mu, lv),
                       ["mu", "logvar"], check=ref)
            else:
                p.call(area, f"free_bits_kl({km}, {kv}, {fb!r})", lambda mu=mu, lv=lv, fb=fb:
                       L.free_bits_kl(mu, lv, fb), ["mu", "logvar", "free_bits"], check=ref)
        elif which == "elbo":
            kw = {k: floats(rng) for k in rng.sample(["beta", "free_bits", "log_scale"], rng.randint(1, 3))}
            kw["likelihood"] = rng.choice(["bernoulli", "gaussian", "laplace", "poisson"])
            p.call(area, f"ELBOLoss({kw})", lambda kw=kw: L.ELBOLoss(**kw).describe(),
                   ["beta", "free_bits", "log_scale", "likelihood"])
        elif which == "geco":
            kw = {k: floats(rng) for k in rng.sample(["lr", "alpha", "lambda_init", "lambda_max", "lambda_min"],
                                                     rng.randint(1, 3))}

            def check(g, kw=kw):
                lo, hi = kw.get("lambda_min", 1e-3), kw.get("lambda_max", 1e3)
                if not lo <= g.lam <= hi or ("lambda_init" in kw and g.lam != float(kw["lambda_init"])):
                    raise Wrong(f"lam {g.lam} for {kw}")
            p.call(area, f"GECO(10, {kw})", lambda kw=kw: O.GECO(10.0, **kw), list(kw) + ["kappa"], check=check)
        else:
            kr, r = tensors(rng, (5,), -50, 50)
            kf, f = tensors(rng, (5,), -50, 50)

            def ref(out, r=r, f=f):
                r64, f64 = torch.as_tensor(r).double(), torch.as_tensor(f).double()
                close(out, torch.nn.functional.softplus(-r64).mean() + torch.nn.functional.softplus(f64).mean(),
                      1e-4, 1e-4)
            p.call(area, f"gan_discriminator_loss({kr}, {kf})", lambda r=r, f=f: O.gan_discriminator_loss(r, f),
                   ["real_logits", "fake_logits"], check=ref)


# ------------------------------------------------------------------------------------------------ metrics

def _model(seed=0, poison=None):
    torch.manual_seed(seed)
    m = MLPVAE((1, 4, 4), (8,), 3)
    if poison:
        with torch.no_grad():
            for name, prm in m.named_parameters():
                if name.startswith(poison):
                    prm.fill_(NAN)
    return m


def _finite_numbers(out: dict) -> None:
    bad = [k for k, v in out.items() if _non_finite(v)]
    if bad:
        raise Wrong(f"non-finite {bad}")


def probe_metrics(p: Probe, rng: random.Random, n: int):
    area = "metrics, judge, disentangle, surgery"
    clf = SmallClassifier(in_shape=(1, 8, 8), n_classes=10, channels=(4, 4), feature_dim=8).eval()
    for i in range(n):
        which = rng.choice(["summary", "evaluate", "diversity", "copy", "sharpness", "accuracy", "features",
                            "mig", "tc", "kl_split", "log_agg", "codes", "factor_moves", "frechet", "coverage"])
        poison = rng.choice([None] * 6 + ["decoder.2.bias", "to_stats"])
        m = _model(i, poison)
        if which in ("summary", "evaluate", "codes"):
            kx, x = tensors(rng, (rng.choice([1, 2, 5]), 1, 4, 4))
            kw = {} if rng.random() < 0.5 else {"batch_size": rng.choice([1, 0, -1, 2.5, 3])}
            fn = {"summary": M.summary, "evaluate": M.evaluate, "codes": None}[which]
            if which == "codes":
                p.call(area, f"codes({poison}, {kx})", lambda m=m, x=x: DS.codes(m, x), ["x", "model", "codes"])
            else:
                p.call(area, f"{which}({poison}, {kx}, {kw})", lambda fn=fn, m=m, x=x, kw=kw: fn(m, x, **kw),
                       ["x", "model", "codes", "batch_size"], check=_finite_numbers)
        elif which == "diversity":
            kx, x = tensors(rng, (rng.choice([0, 1, 2, 6]), 1, 3, 3))
            nn_ = rng.choice([-5, 0, 1, 2, 3, 300, 2.5, None])

            def ref(out, x=x, nn_=nn_):
                flat = torch.as_tensor(x)[:nn_].flatten(1).double()
                close(out, torch.pdist(flat).mean(), 1e-9, 1e-9)
            p.call(area, f"diversity({kx}, n={nn_})", lambda x=x, nn_=nn_: J.diversity(x, nn_),
                   ["images", "n"], check=ref)
        elif which == "copy":
            ks, s = tensors(rng, (rng.choice([0, 1, 5]),), 0, 3)
            kr, r = tensors(rng, (rng.choice([0, 1, 5]),), 0, 3)
            level = rng.choice([0.05, 0.5, 0.0, 1.0, NAN, -1])

            def ref(out, s=s, r=r, level=level):
                close(out, float(np.mean(np.asarray(s, dtype=np.float64) < np.quantile(
                    np.asarray(r, dtype=np.float64), level))), 0, 1e-12)
            p.call(area, f"copy_fraction({ks}, {kr}, {level})", lambda s=s, r=r, level=level:
                   J.copy_fraction(s, r, level), ["sample_nn", "real_nn", "level"], check=ref)
        elif which == "sharpness":
            kx, x = tensors(rng, (2, 1, rng.choice([1, 2, 5]), rng.choice([1, 3])))

            def ref(out, x=x):
                t = torch.as_tensor(x).double()
                close(out, (t[..., 1:] - t[..., :-1]).square().mean() + (t[..., 1:, :] - t[..., :-1, :]).square()
                      .mean(), 1e-4, 1e-6)
            p.call(area, f"sharpness({kx})", lambda x=x: J.sharpness(x), ["images"], check=ref)
        elif which in ("accuracy", "features"):
            kx, x = tensors(rng, (rng.choice([0, 3]), 1, 8, 8))
            y = torch.randint(0, 10, (rng.choice([0, 2, 3]),))
            if which == "accuracy":
                p.call(area, f"accuracy({kx}, y{tuple(y.shape)})", lambda x=x, y=y: J.accuracy(clf, x, y),
                       ["x", "y"])
            else:
                p.call(area, f"features({kx})", lambda x=x: J.features(clf, x), ["images"])
        elif which == "mig":
            z = np.random.default_rng(i).uniform(-1, 1, size=(30, 3)) * rng.choice([1, 1e308, 1e-300, 1e10])
            if rng.random() < 0.2:
                z[0, 0] = rng.choice([NAN, INF])
            v = np.random.default_rng(i).integers(0, rng.choice([1, 3]), size=(30, rng.choice([1, 2])))
            def in_unit(out):
                if not 0 <= out <= 1:
                    raise Wrong(f"mig {out}")
            p.call(area, f"mig(z*{abs(z).max():.1g}, v)", lambda z=z, v=v: M.mig(z, v), ["latents", "factors"],
                   check=in_unit)
        elif which in ("tc", "kl_split", "log_agg"):
            km, mu = tensors(rng, (rng.choice([1, 3, 20]), 3), -3, 3)
            kv, lv = tensors(rng, (3 if rng.random() < 0.3 else 20, 3), -3, 1)
            if which == "tc":
                est = rng.choice(["exact", "mss", "mws", "nope"])
                bs = rng.choice([128, 2, 10, 1])
                valid = True if (km == kv == "ok" and est == "exact") else None
                p.call(area, f"tc_split_codes({km}, {kv}, {est}, {bs})", lambda mu=mu, lv=lv, est=est, bs=bs:
                       DS.tc_split_codes(mu, lv, estimator=est, batch_size=bs),
                       ["mu", "logvar", "estimator", "batch_size"], valid=valid if torch.is_tensor(mu) and
                       torch.is_tensor(lv) and mu.shape == lv.shape else None)
            elif which == "kl_split":
                p.call(area, f"kl_split_codes({km}, {kv})", lambda mu=mu, lv=lv: surgery.kl_split_codes(mu, lv),
                       ["mu", "logvar"])
            else:
                kz, z = tensors(rng, (4, 3), -3, 3)
                p.call(area, f"log_aggregate({kz}, {km}, {kv})", lambda z=z, mu=mu, lv=lv:
                       surgery.log_aggregate(z, mu, lv), ["z", "mu", "logvar"])
        elif which == "factor_moves":
            kz, z0 = tensors(rng, (rng.choice([3, 3, 5]),), -1, 1)
            p.call(area, f"factor_moves({poison}, {kz})", lambda m=m, z0=z0: DS.factor_moves(m, z0, [0], steps=3),
                   ["z0", "dims", "images"])
        elif which == "frechet":
            ka, a = tensors(rng, (rng.choice([1, 5]), 3), -1, 1)
            kb, b = tensors(rng, (5, 3), -1, 1)
            p.call(area, f"frechet_distance({ka}, {kb})", lambda a=a, b=b: M.frechet_distance(a, b),
                   ["feats_a", "feats_b"])
        else:
            labels = rng.choice([[0, 1, 2], [], [0, 12], [[0, 1], [1, 0]], [0.5, 1], [-1]])
            k = rng.choice([3, 10, 1, 2.5])
            p.call(area, f"class_coverage({labels}, {k})", lambda labels=labels, k=k:
                   M.class_coverage(np.array(labels), k), ["pred_labels", "n_classes"])


# --------------------------------------------------------------------------------------------------- data

def probe_data(p: Probe, rng: random.Random, n: int, tmp: Path):
    area = "data"
    from vaeutils.idx import IDX_FILES
    for i in range(n):
        which = rng.choice(["rectangles", "sprites", "binarize", "load", "idx"])
        if which == "rectangles":
            kw = {"n": rng.choice([4, 0, -1, 2.5]), "n_test": 2, "size": rng.choice([16, 8, 4]),
                  "factor_sizes": rng.choice([(3, 2), (3,), (0, 2), (2.5, 2), 3, (3, 2, 1)]),
                  "sub_steps": rng.choice([1, 2, 0])}

            def check(d, kw=kw):
                if d.train_x.shape[0] != kw["n"] or not (0 <= float(d.train_x.min()) <= float(d.train_x.max()) <= 1):
                    raise Wrong(f"rectangles {d}")
            p.call(area, f"rectangles({kw})", lambda kw=kw: data.rectangles(device="cpu", **kw),
                   list(kw) + ["extent"], check=check)
        elif which == "sprites":
            kw = {"n": rng.choice([4, 0, 2.5]), "n_test": rng.choice([2, -1]), "seed": rng.choice([0, -1, 1.5])}
            p.call(area, f"sprites({kw})", lambda kw=kw: data.sprites(device="cpu", size=16, **kw), list(kw))
        elif which == "binarize":
            kx, x = tensors(rng, (2, 1, 4, 4), rng.choice([0, -1]), rng.choice([1, 2]))
            fn = rng.choice([data.binarize, data.static_binarize])
            p.call(area, f"{fn.__name__}({kx})", lambda fn=fn, x=x: fn(x), ["x", "seed"])
        elif which == "load":
            name = rng.choice(["mnist", "MNIST", "cifar", None, 3, "sprites"])
            kw = {"n": 4, "n_test": 2, "size": 16} if name == "sprites" else {}
            p.call(area, f"load({name!r})", lambda name=name, kw=kw: data.load(name, device="cpu", **kw),
                   ["name"], valid=True if name in ("mnist", "MNIST", "sprites") else None)
        else:  # an MNIST folder with one damaged IDX file
            folder = tmp / f"idx{i}"
            raw = folder / "MNIST" / "raw"
            raw.mkdir(parents=True)
            g = torch.Generator().manual_seed(i)
            parts = {"train_x": torch.randint(0, 256, (6, 28, 28), generator=g),
                     "train_y": torch.randint(0, 10, (6,), generator=g),
                     "test_x": torch.randint(0, 256, (4, 28, 28), generator=g),
                     "test_y": torch.randint(0, 10, (4,), generator=g)}
            damage = rng.choice(["label200", "truncate", "magic", "count", "swap", "none"])
            if damage == "label200":
                parts["test_y"][1] = 200
            elif damage == "count":
                parts["test_y"] = parts["test_y"][:3]
            elif damage == "swap":
                parts["train_x"], parts["train_y"] = parts["train_y"], parts["train_x"]
            for key, fname in IDX_FILES.items():
                t = parts[key]
                body = bytes([0, 0, 8, t.dim()]) + b"".join(int(s).to_bytes(4, "big") for s in t.shape)
                body += t.to(torch.uint8).numpy().tobytes()
                if damage == "truncate" and key == "test_x":
                    body = body[:-10]
                if damage == "magic" and key == "train_x":
                    body = b"\x01" + body[1:]
                (raw / fname).write_bytes(body)
            p.call(area, f"mnist(idx {damage})", lambda folder=folder: data.mnist(device="cpu", offline=True,
                                                                                  data_dir=folder),
                   ["ubyte", "idx"], valid=True if damage == "none" else False)


# -------------------------------------------------------------------------------------------------- cache

NAME_ALPHABET = list("ab-_*?[].") + ["/", "\\", "..", "\0", "~", "é", "../", "/etc/"]


def probe_cache(p: Probe, rng: random.Random, n: int, tmp: Path):
    area = "cache"
    outer = tmp / "cache-outer"
    data_dir = outer / "data"
    config.DATA_DIR, config.CACHE_DIR = data_dir, data_dir / "cache"
    config.CACHE_DIR.mkdir(parents=True)
    for folder in (tmp, outer, data_dir):
        (folder / "mnist_5k.pt").write_bytes(b"keep")
    outside = {q: q.read_bytes() for q in tmp.rglob("*.pt") if config.CACHE_DIR not in q.parents}

    def unchanged(_=None):
        now = {q: q.read_bytes() for q in tmp.rglob("*.pt") if config.CACHE_DIR not in q.parents}
        if now != outside:
            raise Wrong("a file outside the cache folder changed")

    for i in range(n):
        which = rng.choice(["clear", "path_for", "load_or_train", "config", "history"])
        name = "".join(rng.choice(NAME_ALPHABET) for _ in range(rng.randint(0, 6)))
        if rng.random() < 0.05:
            name = "a" * rng.choice([199, 201, 300])
        if which == "clear":
            (config.CACHE_DIR / f"m{i}-x.pt").write_bytes(b"x")
            p.call(area, f"clear({name!r})", lambda name=name: (cache.clear(name), unchanged()), ["pattern"])
        elif which == "path_for":
            def check(path, name=name):
                if path.parent != config.CACHE_DIR:
                    raise Wrong(f"{path} outside the cache")
            p.call(area, f"path_for({name!r})", lambda name=name: cache.path_for(name, {"a": 1}), ["name"],
                   check=check)
        elif which == "load_or_train":
            p.call(area, f"load_or_train({name!r})", lambda name=name, i=i: (cache.load_or_train(
                name, {"i": i}, lambda: nn.Linear(2, 2), lambda m: {"steps": [1.0]})[2], unchanged()), ["name"])
        elif which == "config":
            value = rng.choice([1.0, NAN, INF, (lambda: 1), np.float32(0.5), {"x": NAN}, [1, (2, 3)], object(),
                                torch.device("cpu"), "s", None])
            cfg = {"v": value, "i": i} if rng.random() < 0.9 else {1: value}
            trained = []

            def twice(cfg=cfg, trained=trained):
                hits = [cache.load_or_train("cfg", cfg, lambda: nn.Linear(2, 2),
                                            lambda m: trained.append(1) or {})[2] for _ in range(2)]
                if hits != [False, True]:
                    raise Wrong(f"hits {hits} for config {cfg}")
            p.call(area, f"config({cfg!r})", twice, ["config"])
        else:
            value = rng.choice([np.float32(1.5), np.arange(3), np.int64(2), torch.ones(2), [np.float64(1)],
                                (np.float32(1), "a"), {"k": np.bool_(True)}, 1.0, object()])

            def twice(value=value, i=i):
                out = [cache.load_or_train("h", {"h": i}, lambda: nn.Linear(2, 2), lambda m: {"v": value})
                       for _ in range(2)]
                storable = type(value) is not object
                if out[1][2] != storable:
                    raise Wrong(f"history {value!r}: hit {out[1][2]} on the second call")
            p.call(area, f"history({value!r})", twice, ["history"])


# -------------------------------------------------------------------------------------------------- train

def probe_train(p: Probe, rng: random.Random, n: int):
    area = "train"
    for i in range(n):
        kx, x = tensors(rng, (8, 1, 4, 4), 0, rng.choice([1, 1, 2]))
        kw = {k: rng.choice(v) for k, v in {"epochs": [1, 0, 2.5, "1"], "batch_size": [4, 0, -1, 1e9],
                                             "lr": [1e-3, 0, NAN, -1, "x"], "seed": [0, 2.5, -1, np.int64(3)],
                                             "binarize": [False, True, "yes"]}.items() if rng.random() < 0.4}
        which = rng.choice(["fit", "fit", "evaluate"])
        m = _model(i)
        if which == "fit":
            p.call(area, f"fit({kx}, {kw})", lambda m=m, x=x, kw=kw: train.fit(m, x, progress=False, **{
                "epochs": 1, **kw})["train"][-1], ["train_x", "test_x"] + list(kw) + ["epochs"])
        else:
            p.call(area, f"evaluate({kx})", lambda m=m, x=x: train.evaluate(m, x), ["x"])


def probe_cli(p: Probe, rng: random.Random, n: int):
    area = "CLI"
    flags = {"--epochs": ["1", "0", "-3", "2.5", "x"], "--lr": ["0.01", "0", "nan", "-1", "inf"],
             "--beta": ["1", "-1", "nan", "0"], "--batch-size": ["64", "0"], "--hidden": ["8", "0", "a"],
             "--seed": ["0", "-1", "1.5"], "--dataset": ["mnist", "cifar"], "--device": ["cpu", "tpu", "cuda:9"],
             "--precision": ["fp32", "fp8"], "--threads": ["1", "0"]}
    for _ in range(n):
        chosen = rng.sample(list(flags), rng.randint(1, 3))
        argv = [a for f in chosen for a in (f, rng.choice(flags[f]))]
        err = io.StringIO()

        def parse(argv=argv, err=err, chosen=chosen):
            try:
                with contextlib.redirect_stderr(err):
                    return cli._parse(argv)
            except SystemExit as exc:
                text = err.getvalue()
                if exc.code == 2 and any(f in text for f in chosen) and "Traceback" not in text:
                    raise ValueError(f"{' '.join(chosen)}: {text}") from None
                raise RuntimeError(text) from None
        p.call(area, f"vaeutils.train {' '.join(argv)}", parse, chosen)


def probe_kit(p: Probe, tmp: Path):
    area = "kit"
    cases = {"invalid-json": b"{not json", "empty": b"", "non-utf8": b"\xff\xfe{}", "array": b"[]",
             "no-metadata": json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5}).encode(),
             "cells-null": json.dumps({"cells": None, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()}
    for name, body in cases.items():
        path = tmp / f"{name}.ipynb"
        path.write_bytes(body)

        def run(path=path):
            out = subprocess.run([sys.executable, "-m", "coursekit", "check", str(path)], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
            text = out.stdout + out.stderr
            if "Traceback" in text:
                raise RuntimeError(text.strip().splitlines()[-1])
            if out.returncode != 0:
                raise ValueError(text)
            raise Wrong("a malformed notebook passed the check")
        p.call(area, f"coursekit check {name}", run, [path.name])


# ------------------------------------------------------------------------------------------------ widgets

def probe_widgets(p: Probe, rng: random.Random, n: int):
    area = "widgets"
    from vaeutils.widgets import kl_explorer, recon_explorer
    with contextlib.redirect_stdout(io.StringIO()):
        kl, rec = kl_explorer(), recon_explorer()
    sliders = [(kl, "mu_slider", "mu"), (kl, "sigma_slider", "sigma"), (rec, "prediction_slider", "prediction"),
               (rec, "target_slider", "target"), (rec, "sigma_slider", "sigma")]
    for _ in range(n):
        w, attr, key = rng.choice(sliders)
        value = rng.choice([NAN, INF, -INF, 0.3, 0.05, -2.0, 1e9, "x", None, np.float32(0.2), True])

        def move(w=w, attr=attr, key=key, value=value):
            getattr(w, attr).value = value
            shown = getattr(w, attr).value
            if not math.isclose(w.state[key], shown, rel_tol=1e-9, abs_tol=1e-12):
                raise Wrong(f"{attr} shows {shown} but the view has {key} = {w.state[key]}")
        p.call(area, f"{attr} = {value!r}", move, ["value"])
        for other, o_attr, o_key in sliders[:2] if w is kl else sliders[2:]:
            if math.isclose(other.state[o_key], getattr(other, o_attr).value, rel_tol=1e-9, abs_tol=1e-12):
                continue
            p.record(area, "silent wrong", f"after {attr} = {value!r}", f"{o_attr} and the view disagree")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies how many inputs are drawn")
    ap.add_argument("--no-kit", action="store_true", help="skip the kit's command line (subprocesses)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(args.seed)
    p = Probe()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vaelab-probe-") as tmp:
        tmp = Path(tmp)

        def k(x):
            return max(1, int(x * args.scale))
        probe_losses(p, rng, k(1100))
        probe_metrics(p, rng, k(500))
        probe_data(p, rng, k(120), tmp)
        probe_cache(p, rng, k(200), tmp)
        probe_train(p, rng, k(90))
        probe_cli(p, rng, k(60))
        if not args.no_kit:
            probe_kit(p, tmp)
        probe_widgets(p, rng, k(150))
    seconds = time.perf_counter() - t0
    print(p.table())
    print(f"\n{sum(sum(c.values()) for c in p.counts.values()):,} inputs in {seconds:.0f} s (seed {args.seed})")
    for (area, outcome), items in sorted(p.examples.items()):
        print(f"\n{area}, {outcome} ({len(items)}):")
        for line in items[:8]:
            print(f"  - {line}")


if __name__ == "__main__":
    main()
