"""β schedules and capacity control: how the weight on the KL term changes with the optimiser step.

``Constant``, ``LinearWarmup`` (KL warm-up), ``Cyclical`` (cyclical annealing), ``CapacitySchedule``
and ``capacity_penalty`` (γ·|KL − C(t)|). Each schedule is a frozen dataclass, so it describes
itself for the cache key. Taught in unit 07; ``losses.ELBOLoss`` takes them as ``beta`` and
``capacity``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from . import checks


def _check_step(step) -> int:
    return checks.integer("step", step, low=0, hint="the optimiser step")


def _store_plain(schedule) -> None:
    """NumPy numbers stored as the Python numbers they hold (same schedule, same cache key)."""
    for f in dataclasses.fields(schedule):
        object.__setattr__(schedule, f.name, checks.plain(getattr(schedule, f.name)))


@dataclass(frozen=True)
class Constant:
    """β(t) = beta for every step."""

    beta: float = 1.0

    def __post_init__(self):
        checks.positive("beta", self.beta, allow_zero=True)
        _store_plain(self)

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.beta)


@dataclass(frozen=True)
class LinearWarmup:
    """KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): β rises linearly from
    ``beta_start`` to ``beta_max`` over ``warmup_steps`` steps, then stays there."""

    warmup_steps: int
    beta_max: float = 1.0
    beta_start: float = 0.0

    def __post_init__(self):
        checks.integer("warmup_steps", self.warmup_steps, low=1)
        checks.positive("beta_max", self.beta_max, allow_zero=True)
        checks.positive("beta_start", self.beta_start, allow_zero=True)
        _store_plain(self)

    def __call__(self, step: int) -> float:
        _check_step(step)
        frac = min(step / self.warmup_steps, 1.0)
        return float(self.beta_start + frac * (self.beta_max - self.beta_start))


@dataclass(frozen=True)
class Cyclical:
    """Cyclical annealing (Fu et al. 2019): each of the cycles of ``period`` steps spends its
    first ``ramp_fraction`` rising linearly from 0 to ``beta_max``, the rest at ``beta_max``.
    After ``n_cycles`` cycles (if given) β stays at ``beta_max``."""

    period: int
    beta_max: float = 1.0
    ramp_fraction: float = 0.5
    n_cycles: int | None = None

    def __post_init__(self):
        checks.integer("period", self.period, low=1)
        checks.positive("beta_max", self.beta_max, allow_zero=True)
        checks.number("ramp_fraction", self.ramp_fraction, 0.0, 1.0, low_open=True)
        checks.optional_integer("n_cycles", self.n_cycles, low=1, what_none="cycle for ever")
        _store_plain(self)

    def __call__(self, step: int) -> float:
        _check_step(step)
        if self.n_cycles is not None and step >= self.n_cycles * self.period:
            return float(self.beta_max)
        pos = (step % self.period) / self.period
        return float(self.beta_max * min(pos / self.ramp_fraction, 1.0))


@dataclass(frozen=True)
class CapacitySchedule:
    """Burgess et al. 2018: the target capacity C(t) rises linearly from 0 to ``c_max`` nats
    over ``steps`` steps; the loss uses γ·|KL − C(t)| (see :func:`capacity_penalty`)."""

    c_max: float
    steps: int
    gamma: float = 100.0

    def __post_init__(self):
        checks.positive("c_max", self.c_max, allow_zero=True)
        checks.integer("steps", self.steps, low=1)
        checks.positive("gamma", self.gamma)
        _store_plain(self)

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.c_max * min(step / self.steps, 1.0))


def capacity_penalty(kl: torch.Tensor, capacity: float, gamma: float) -> torch.Tensor:
    """γ·|KL − C|: the capacity objective's replacement for β·KL (``kl`` in nats per example)."""
    checks.tensor("kl", kl)
    capacity = checks.positive("capacity", capacity, allow_zero=True)
    gamma = checks.positive("gamma", gamma)
    return gamma * (kl - capacity).abs()
