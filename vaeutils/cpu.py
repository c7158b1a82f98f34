"""The CPU a unit runs on: what it is, how many cores this process may use, how many threads to use.

A training step on a CPU is a series of parallel regions; each ends when its slowest thread is done.
On a quiet two-core laptop two threads are fastest, but when another busy program shares the cores
one of the two threads keeps being descheduled and every region waits for it: an epoch took 3.6
times as long as on a quiet machine, against 1.9 times with one thread. So ``train.fit`` asks a
:class:`ThreadPolicy` every half second how many threads to use: all the cores this process may use
(``os.sched_getaffinity`` and a cgroup CPU quota, as in a container or a class server's pod) minus
the cores other processes kept busy over the last interval (from ``/proc/stat``, less this process's
own CPU time). The numbers are the same whatever the thread count (the course's matrix products give
the same bits with one thread or two; ``tests/test_cpu.py`` checks a training run), so only the time
changes.

``VAELAB_THREADS`` overrides: a number fixes the thread count, ``auto`` (the default) adapts.
Without it an ``OMP_NUM_THREADS`` setting is the upper bound.

Several models at once (``sweep.train_many``) train faster side by side, in worker processes that
each get one thread while the others are busy, than one after the other with all threads: the
products of one small batch keep two threads only about 65 % busy. :func:`worker_count` says how
many worker processes to use: one per core that is free now, at most one per model, and one (no
workers) when ``VAELAB_THREADS`` fixes a count (a class server's kernel), off Linux, or with
``VAELAB_WORKERS=1``; a number there fixes it.

:func:`describe` names the CPU and the features that decide what its matrix products cost (AVX2,
AVX-512, AVX512-BF16, AMX), for every benchmark's header.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import time
from pathlib import Path

import torch

ENV = "VAELAB_THREADS"
WORKERS_ENV = "VAELAB_WORKERS"
FEATURES = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX512-BF16"),
            ("amx_bf16", "AMX"))
INTERVAL_S = 0.5  # how often the policy looks at the machine
BUSY_THRESHOLD = 0.4  # cores' worth of other work above which a thread is given up


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def model_name() -> str:
    """The CPU's name as the system reports it (``platform.processor()`` without /proc/cpuinfo)."""
    for line in _cpuinfo().splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def features() -> list[str]:
    """The CPU's matrix-product features by name: a subset of AVX2, AVX-512, AVX512-BF16, AMX."""
    flags = set()
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return [name for flag, name in FEATURES if flag in flags]


def _cgroup_quota() -> float | None:
    """The cgroup v2 CPU quota in cores (``cpu.max``), or None when there is none."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """How many cores this process may run on: its CPU affinity, capped by a cgroup quota (rounded
    up to whole cores)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(n, math.ceil(quota)) if quota else n)


def describe() -> str:
    """One line for a benchmark's header: the CPU, its matrix-product features, the usable cores."""
    found = features()
    return (f"{model_name()} ({', '.join(found) if found else 'no AVX2'}; {usable_cores()} usable "
            f"cores of {os.cpu_count()})")


def _env_count(name: str, what: str) -> int | None:
    """A whole number >= 1 from the environment variable ``name`` (None when unset or ``auto``);
    any other value is named, with ``what`` it should count."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r} is not {what}; "
                         "set it to a whole number >= 1 or to 'auto'")
    return int(value)


def requested_threads() -> int | None:
    """A fixed thread count from ``VAELAB_THREADS`` (None: adapt); bad values are named."""
    return _env_count(ENV, "a thread count")


def _ceiling() -> int:
    """The most threads training may use: the usable cores, or fewer if OMP_NUM_THREADS says so."""
    cores = usable_cores()
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    return max(1, min(cores, int(omp))) if omp.isdigit() and int(omp) >= 1 else cores


def _busy_seconds() -> float | None:
    """CPU seconds every core has spent busy since boot (/proc/stat), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class ThreadPolicy:
    """How many threads to train with, looked at every :data:`INTERVAL_S` seconds: call :meth:`tick`
    once per step (it costs a clock read until the interval is up). ``fixed``: a thread count that
    never changes (default: ``VAELAB_THREADS`` when it is a number). ``history`` keeps
    ``(seconds, others, threads)``."""

    def __init__(self, fixed: int | None = None, interval: float = INTERVAL_S):
        self.fixed = requested_threads() if fixed is None else fixed
        self.before = torch.get_num_threads()  # what :meth:`restore` goes back to
        # a count set by hand (torch.set_num_threads) is a ceiling
        self.ceiling = min(_ceiling(), self.before)
        self.interval = interval
        self.history: list[tuple[float, float, int]] = []
        self._start = self._last = time.perf_counter()
        self._busy, self._own = _busy_seconds(), _own_seconds()
        self.threads = self.fixed or self.ceiling
        torch.set_num_threads(self.threads)

    def others(self) -> float | None:
        """Cores' worth of other processes' work since the last look (None if it cannot be read)."""
        now, busy, own = time.perf_counter(), _busy_seconds(), _own_seconds()
        if busy is None or self._busy is None or now - self._last <= 0:
            return None
        load = ((busy - self._busy) - (own - self._own)) / (now - self._last)
        self._last, self._busy, self._own = now, busy, own
        return max(0.0, load)

    def choose(self, others: float) -> int:
        """The thread count for ``others`` cores of competing work: the ceiling when the cores are
        ours, one fewer for every busy core beyond :data:`BUSY_THRESHOLD`, at least one."""
        return max(1, min(self.ceiling, self.ceiling - math.ceil(others - BUSY_THRESHOLD)))

    def tick(self) -> int:
        """Adjust the thread count when the interval is up; returns the count in use."""
        if self.fixed or time.perf_counter() - self._last < self.interval:
            return self.threads
        others = self.others()
        if others is not None:
            threads = self.choose(others)
            if threads != self.threads:
                torch.set_num_threads(threads)
                self.threads = threads
            self.history.append((round(time.perf_counter() - self._start, 3), round(others, 2),
                                 self.threads))
        return self.threads

    def restore(self) -> None:
        """Go back to the thread count in use before this policy started."""
        torch.set_num_threads(self.before)


def requested_workers() -> int | None:
    """A fixed worker count from ``VAELAB_WORKERS`` (None: decide from the machine; 1: one model at
    a time); bad values are named."""
    return _env_count(WORKERS_ENV, "a number of processes")


def worker_count(jobs: int, sample: float = 0.25) -> int:
    """How many processes should train ``jobs`` models side by side (1: here, one at a time).

    ``VAELAB_WORKERS`` fixes it (capped at ``jobs``). Otherwise: 1 for fewer than two jobs, off
    Linux (workers are forked), or when ``VAELAB_THREADS`` fixes the thread count (a class server
    that gives each kernel one thread does not want it to start more processes); else the cores
    this process may use less those other programs kept busy over ``sample`` seconds, at most
    ``jobs``, at least 1.
    """
    jobs = max(0, int(jobs))
    fixed = requested_workers()
    if fixed is not None:
        return max(1, min(fixed, jobs))
    if jobs < 2 or platform.system() != "Linux" or requested_threads() is not None:
        return 1
    busy, own, t0 = _busy_seconds(), _own_seconds(), time.perf_counter()
    time.sleep(sample)
    if busy is None:
        return 1
    elapsed = time.perf_counter() - t0
    others = max(0.0, ((_busy_seconds() - busy) - (_own_seconds() - own)) / elapsed)
    free = _ceiling() - max(0, math.ceil(others - BUSY_THRESHOLD))
    return max(1, min(jobs, free))
