"""β and capacity schedules: values at known steps and bad arguments.

The trainer calls ``schedule(step)`` once per optimiser step (step 0 is the first update), and
unit 07 plots the same objects, so the curve in the lesson is the curve the trainer used.
"""

import dataclasses

import numpy as np
import pytest
import torch

from vaeutils import checks
from vaeutils import schedules as S
from vaeutils.losses import ELBOLoss


def test_constant():
    s = S.Constant(0.25)
    assert [s(t) for t in (0, 1, 10**6)] == [0.25, 0.25, 0.25]
    assert S.Constant()(3) == 1.0
    assert isinstance(s(0), float)


def test_linear_warmup_start_middle_end_after():
    s = S.LinearWarmup(warmup_steps=100)
    assert s(0) == 0.0
    assert s(25) == pytest.approx(0.25)
    assert s(50) == pytest.approx(0.5)
    assert s(99) == pytest.approx(0.99)
    assert s(100) == 1.0
    assert s(10_000) == 1.0


def test_linear_warmup_with_start_and_max():
    s = S.LinearWarmup(warmup_steps=10, beta_max=4.0, beta_start=1.0)
    assert s(0) == 1.0
    assert s(5) == pytest.approx(2.5)
    assert s(10) == 4.0 and s(11) == 4.0
    down = S.LinearWarmup(warmup_steps=4, beta_max=0.0, beta_start=2.0)  # a decreasing ramp is allowed
    assert [down(t) for t in range(6)] == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0, 0.0])


def test_cyclical_values_within_a_cycle():
    s = S.Cyclical(period=100, beta_max=1.0, ramp_fraction=0.5)
    assert s(0) == 0.0
    assert s(25) == pytest.approx(0.5)
    assert s(49) == pytest.approx(0.98)
    assert s(50) == 1.0
    assert s(99) == 1.0


def test_cyclical_restarts_at_each_cycle_boundary():
    s = S.Cyclical(period=100, beta_max=2.0, ramp_fraction=0.5)
    for k in range(4):
        assert s(100 * k) == 0.0, "β drops back to 0 at the start of every cycle"
        assert s(100 * k + 25) == pytest.approx(1.0)
        assert s(100 * k + 99) == 2.0
    assert s(399) == 2.0 and s(400) == 0.0


def test_cyclical_after_the_last_cycle_stays_at_max():
    s = S.Cyclical(period=10, ramp_fraction=0.5, n_cycles=3)
    assert s(20) == 0.0  # the third cycle still restarts
    assert s(29) == 1.0
    assert s(30) == 1.0 and s(1000) == 1.0  # no fourth restart


def test_cyclical_matches_fu_et_al_reference_loop():
    """Fu et al. (2019) build β with a loop over cycles (their frange_cycle_linear): within a cycle
    of length P, β rises by 1/(P·R) per step from 0 until it reaches 1, then holds."""
    n_iter, n_cycle, ratio = 120, 3, 0.25
    period = n_iter // n_cycle
    reference = [1.0] * n_iter
    for c in range(n_cycle):
        v, i = 0.0, 0
        while v <= 1.0 and i + c * period < n_iter:
            reference[i + c * period] = v
            v += 1.0 / (period * ratio)
            i += 1
    s = S.Cyclical(period=period, ramp_fraction=ratio, n_cycles=n_cycle)
    assert [s(t) for t in range(n_iter)] == pytest.approx(reference, abs=1e-12)


def test_ramp_fraction_one_is_a_sawtooth():
    s = S.Cyclical(period=4, ramp_fraction=1.0)
    assert [s(t) for t in range(9)] == pytest.approx([0, 0.25, 0.5, 0.75, 0, 0.25, 0.5, 0.75, 0])


def test_capacity_schedule():
    c = S.CapacitySchedule(c_max=25.0, steps=1000, gamma=50.0)
    assert c(0) == 0.0
    assert c(500) == pytest.approx(12.5)
    assert c(1000) == 25.0 and c(5000) == 25.0
    assert c.gamma == 50.0


def test_capacity_penalty_value_and_gradient():
    kl = torch.tensor(7.0, requires_grad=True)
    p = S.capacity_penalty(kl, 5.0, 10.0)
    assert p.item() == pytest.approx(20.0)
    p.backward()
    assert kl.grad.item() == 10.0  # above C the penalty pushes the KL down
    kl2 = torch.tensor(3.0, requires_grad=True)
    S.capacity_penalty(kl2, 5.0, 10.0).backward()
    assert kl2.grad.item() == -10.0  # below C it pushes the KL up: the opposite of β·KL


def test_schedules_are_frozen_and_hashable():
    s = S.LinearWarmup(10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.warmup_steps = 5
    assert s == S.LinearWarmup(10) and hash(s) == hash(S.LinearWarmup(10))
    assert repr(S.Cyclical(100)) != repr(S.Cyclical(200))  # the cache key tells them apart


def test_elbo_loss_reads_the_schedule_each_step():
    loss = ELBOLoss(beta=S.Cyclical(period=10))
    assert [loss.beta_at(t) for t in (0, 2, 5, 9, 10)] == pytest.approx([0.0, 0.4, 1.0, 1.0, 0.0])
    assert ELBOLoss(beta=0.5).beta_at(123) == 0.5


@pytest.mark.parametrize("make", [
    lambda: S.LinearWarmup(0),
    lambda: S.LinearWarmup(-5),
    lambda: S.LinearWarmup(10.5),
    lambda: S.LinearWarmup(True),
    lambda: S.LinearWarmup(10, beta_max=-1.0),
    lambda: S.LinearWarmup(10, beta_start=float("nan")),
    lambda: S.Cyclical(0),
    lambda: S.Cyclical(-100),
    lambda: S.Cyclical(100.0),
    lambda: S.Cyclical(100, ramp_fraction=0.0),
    lambda: S.Cyclical(100, ramp_fraction=1.5),
    lambda: S.Cyclical(100, n_cycles=0),
    lambda: S.Cyclical(100, beta_max=float("inf")),
    lambda: S.Constant(-1.0),
    lambda: S.Constant("1"),
    lambda: S.CapacitySchedule(c_max=-1.0, steps=10),
    lambda: S.CapacitySchedule(c_max=5.0, steps=0),
    lambda: S.CapacitySchedule(c_max=5.0, steps=10, gamma=0.0),
])
def test_bad_constructor_arguments(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("step", [-1, 1.5, "3", None, True])
@pytest.mark.parametrize("schedule", [S.Constant(1.0), S.LinearWarmup(10), S.Cyclical(10), S.CapacitySchedule(5.0, 10)])
def test_bad_steps(schedule, step):
    with pytest.raises(ValueError, match="step"):
        schedule(step)


def test_error_messages_name_the_argument():
    with pytest.raises(ValueError, match="period"):
        S.Cyclical(0)
    with pytest.raises(ValueError, match="warmup_steps"):
        S.LinearWarmup(0)
    with pytest.raises(ValueError, match="ramp_fraction"):
        S.Cyclical(10, ramp_fraction=2)
    with pytest.raises(ValueError, match="capacity"):
        S.capacity_penalty(torch.tensor(1.0), -1.0, 1.0)


@pytest.mark.parametrize("make, plain", [
    (lambda: S.Constant(np.float32(0.5)), S.Constant(0.5)),
    (lambda: S.LinearWarmup(np.int64(10), np.float32(2.0), np.float64(0.5)), S.LinearWarmup(10, 2.0, 0.5)),
    (lambda: S.Cyclical(np.int32(10), np.float32(1.0), np.float32(0.5), np.int64(3)), S.Cyclical(10, 1.0, 0.5, 3)),
    (lambda: S.CapacitySchedule(np.float32(5.0), np.int64(10), np.float64(100.0)), S.CapacitySchedule(5.0, 10)),
])
def test_numpy_numbers_make_the_same_schedule_and_cache_key(make, plain):
    """np.int64 steps and np.float32 β are numbers like any other (they used to be refused or break the key)."""
    s = make()
    assert s == plain and hash(s) == hash(plain) and checks.plain_data(s) == checks.plain_data(plain)
    assert all(not isinstance(getattr(s, f.name), np.generic) for f in dataclasses.fields(s))
    assert s(np.int64(3)) == plain(3) and s(np.uint8(7)) == plain(7)
    assert S.capacity_penalty(torch.tensor(4.0), np.float32(5.0), np.float64(2.0)).item() == 2.0
