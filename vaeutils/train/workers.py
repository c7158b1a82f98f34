"""Train several models side by side in worker processes (``sweep.train_many``).

A batch of 128 images gives each matrix product too little work to keep two threads busy: on a
two-core CPU one model trains only about 1.3 times faster with two threads than with one. Two
models, each in its own process with one thread, train about 1.5 times faster than the same two one
after the other. A worker trains with one thread, always: GNU OpenMP's thread team does not survive
a fork. So the models that would leave a core idle at the end (the last of an odd number, on two
cores) are trained here, after the workers, with every thread. The numbers do not change: the
course's products give the same bits with one thread or two (``vaeutils.cpu``), and each job seeds
its own weights and random stream.

Workers are forked (Linux only; ``cpu.worker_count`` says 1 elsewhere), so they share the parent's
data without copying them; each trains its models with printing off and sends back the weights
and the history. The parent writes the checkpoints, so the cache rules hold as for one model. A
failing job's error is raised in the parent with its own message; an interrupt stops the workers.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from .. import cpu as _cpu

_JOBS: list = []  # what the forked workers run: set by run() just before they start


def _start_worker() -> None:
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the worker's own output, for its lifetime
    sys.stdout = sys.stderr = devnull  # the kernel's streams do not reach a forked process
    # One thread, fixed. GNU OpenMP's thread team does not survive a fork: a forked process that
    # asks for two threads waits forever at the first parallel region's barrier.
    os.environ[_cpu.ENV] = "1"
    torch.set_num_threads(1)


def _train(index: int):
    job = _JOBS[index]
    model = job.build()
    history = job.run(model)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return index, buffer.getvalue(), history


def _stop(executor: ProcessPoolExecutor) -> None:
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def run(jobs, workers: int) -> Iterator[tuple[int, dict, dict]]:
    """Train every ``train.TrainJob`` in ``jobs`` in ``workers`` forked processes; yields
    ``(index, state_dict, history)`` as each finishes. ``build()`` and ``run()`` run in the worker
    (the parent's global random state is untouched)."""
    global _JOBS
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        raise ValueError(f"workers must be >= 2 on a system that can fork, got {workers}; "
                         "train one model at a time instead")
    _JOBS = list(jobs)
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork in a threaded kernel
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_start_worker)
        pending = {executor.submit(_train, i) for i in range(len(_JOBS))}
    done_all = False
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    index, weights, history = future.result()
                except BrokenProcessPool as err:
                    raise RuntimeError(
                        "a training worker process died (out of memory?); set VAELAB_WORKERS=1 "
                        "to train one model at a time") from err
                yield index, torch.load(io.BytesIO(weights), weights_only=True), history
        done_all = True
    finally:
        if done_all:
            executor.shutdown(wait=True)
        else:
            _stop(executor)
        _JOBS = []
