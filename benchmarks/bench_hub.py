"""Load test of the class server: 20 students on one JupyterHub (classroom/jupyterhub_config.py), all on 127.0.0.1.

1. The shared data folder is filled once, in full mode, with the app's β-sweep (what `make models` trains for
   the app), owned by root and read-only for the students; it is compared before and after (no write).
2. 20 local accounts are made; the hub starts their servers through its REST API (as each student).
3. 17 students are kernel clients: each starts a kernel in their own server and runs the app notebook's cells
   in it over the hub's proxied websocket, exactly as JupyterLab would. 3 students use a real browser
   (Debian Chromium through Playwright): log in on the hub's page, pull the course with the nbgitpuller
   link's API, open the app in Voila inside their server.
4. For ``--seconds`` (60) every student moves the β slider at once, pausing ``--think`` (0.3 s) between
   moves. Latency as the student sees it: from sending the slider's new value (a kernel client) or pressing
   the arrow key (a browser) to the new picture arriving (client) or on screen (browser, two frames later).
5. Memory: proportional set size (PSS, shared pages split fairly) of the hub, proxy and culler, and of
   each student's server and kernels, sampled during the minute; the peak is reported.
6. Live β trainers: started in 1, 2, 3, ... kernels at once for ``--trainer-seconds`` each; the largest number
   whose every trainer refreshes at >= 5 updates/s is the machine's capacity.

Run as root from the repository root (about 8 minutes on 2 cores; accounts vlb-NN are removed at the end):

    .venv/bin/python benchmarks/bench_hub.py [--students 20] [--browsers 3] [--seconds 60]

Exit status 1 when an error occurred or the shared cache changed. Everything stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from coursekit import hubtools
from coursekit.paths import ROOT

APP = ROOT / "notebooks" / "beta_explorer_app.ipynb"
GROUP = "vaelab-bench-students"
BROWSER_TARGET_MS = 200.0
LIVE_TARGET = 5.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prepare_shared(folder: Path, smoke: bool) -> None:
    """The app's β-sweep and the MNIST sample, in ``folder`` (kept between runs), readable by all."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "VAELAB_SHARED_CACHE", "VAELAB_SHARED_DATA")}
    env.update(VAELAB_DATA=str(folder), SMOKE="1" if smoke else "0", VAELAB_OFFLINE="1", PYTHONPATH=str(ROOT))
    log(f"shared data folder {folder}: loading (or training, the first time) the {'smoke' if smoke else 'full'}"
        "-mode β-sweep")
    subprocess.run([sys.executable, "-m", "coursekit", "app", "--prepare-only"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    for p in (folder.parent, folder):
        p.chmod(0o755)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(folder)], check=True)


def snapshot(folder: Path):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def percentiles(values):
    if not values:
        return float("nan"), float("nan"), float("nan")
    return float(np.percentile(values, 50)), float(np.percentile(values, 95)), float(max(values))


class Memory:
    """Peak PSS (MB) of the hub's own processes and of each student's processes, sampled in a thread."""

    def __init__(self, hub, users):
        self.hub, self.users = hub, set(users)
        self.hub_mb, self.student_mb = 0.0, {}
        self.kernel_mb: dict[str, float] = {}
        self._stop = threading.Event()

    def sample(self) -> None:
        import psutil

        hub_total, per_user, kernels = 0.0, {}, {}
        for p in self.hub.processes():
            try:
                mb = p.memory_full_info().pss / 2**20
                user = p.username()
                cmd = " ".join(p.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if user in self.users:
                per_user[user] = per_user.get(user, 0.0) + mb
                if "ipykernel" in cmd:
                    kernels[user] = kernels.get(user, 0.0) + mb
            else:
                hub_total += mb
        self.hub_mb = max(self.hub_mb, hub_total)
        for u, mb in per_user.items():
            self.student_mb[u] = max(self.student_mb.get(u, 0.0), mb)
        for u, mb in kernels.items():
            self.kernel_mb[u] = max(self.kernel_mb.get(u, 0.0), mb)

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.sample()

    def start(self, every: float = 5.0) -> None:
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.sample()


# --------------------------------------------------------------------------- kernel clients

async def kernel_student(hub, user, token, cells, results, errors):
    kernel = await hubtools.Kernel(hub, user, token).open()
    t0 = time.perf_counter()
    for code in cells:
        await kernel.execute(code, timeout=900)
    results["build_s"].append(time.perf_counter() - t0)
    slider = kernel.find_widget("beta-slider", "SelectionSliderModel")
    explorer = kernel.find_widget("beta-explorer")
    image = kernel.child(explorer, "ImageModel")
    n_betas = len(kernel.widgets[slider]["_options_labels"])
    return {"kernel": kernel, "slider": slider, "image": image, "n": n_betas, "user": user}


async def move_sliders(s, seconds, think, latencies, errors):
    kernel, index, rng = s["kernel"], kernel_index(s), random.Random(s["user"])
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        index = (index + rng.randrange(1, s["n"])) % s["n"]  # always a different β
        try:
            latencies.append(1e3 * await kernel.set_and_wait(s["slider"], {"index": index}, s["image"]))
        except TimeoutError:
            errors.append(f"{s['user']}: no picture within 10 s of a slider move")
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))
    errors.extend(f"{s['user']}: {e}" for e in kernel.errors)


def kernel_index(s) -> int:
    return int(s["kernel"].widgets[s["slider"]].get("index", 0))


# --------------------------------------------------------------------------- real browsers

async def browser_student(playwright, hub, user, password, seconds, think, latencies, errors, ready, go, failed,
                          reloads):
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    from coursekit.browser import CHROMIUM, CHROMIUM_ARGS, WATCH_JS, WIDGET_ERROR

    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        page = await browser.new_page(viewport={"width": 1300, "height": 1000})
        await page.goto(f"{hub.url}/hub/login?next=/hub/home")
        await page.fill("#username_input", user)
        await page.fill("#password_input", password)
        await page.click("#login_submit")
        await page.wait_for_url("**/hub/home", timeout=300_000)
        handle = page.locator(".beta-slider .noUi-handle")
        for attempt in (1, 2):  # a page that never shows the app is reloaded once, as a student would
            try:
                await page.goto(f"{hub.url}/user/{user}/voila/render/vae-loss-lab/notebooks/{APP.name}",
                                timeout=300_000)
                await handle.wait_for(timeout=300_000)
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    errors.append(f"{user}: the app page did not show its slider, even after a reload")
                    failed.append(user)
                    return
                reloads.append(user)
        ready.append(user)
        await go.wait()
        key, t_end = "ArrowRight", time.perf_counter() + seconds
        rng = random.Random(user)
        while time.perf_counter() < t_end:
            position = float(await handle.get_attribute("aria-valuenow"))
            maximum = float(await handle.get_attribute("aria-valuemax") or 7)
            key = "ArrowLeft" if position >= maximum else "ArrowRight" if position <= 0 else key
            await page.evaluate(WATCH_JS, [".beta-explorer", None])
            await handle.focus()
            await handle.press(key)
            try:
                await page.wait_for_function("() => window.__vaelabWatch.frame_ms !== null", timeout=10_000)
                latencies.append((await page.evaluate("() => window.__vaelabWatch"))["frame_ms"])
            except Exception:
                errors.append(f"{user}: the picture did not change within 10 s of a key press")
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
        text = await page.evaluate("() => document.body.innerText")
        errors.extend(f"{user}: page shows: {line}" for line in text.splitlines()
                      if WIDGET_ERROR in line or "Traceback" in line)
    finally:
        await browser.close()


# --------------------------------------------------------------------------- live trainers

START_TRAINER = "trainer.max_seconds = 120\ntrainer.start()"
TRAINER_STATS = ("{'n': len(trainer.history), 'first': trainer.history[0]['seconds'] if trainer.history else None, "
                 "'last': trainer.history[-1]['seconds'] if trainer.history else None, "
                 "'steps': trainer.history[-1]['step'] if trainer.history else 0}")


async def trainer_capacity(students, seconds, most):
    rows, capacity = [], 0
    for n in range(1, min(most, len(students)) + 1):
        group = students[:n]
        await asyncio.gather(*(s["kernel"].execute(START_TRAINER, timeout=120) for s in group))
        await asyncio.sleep(seconds)
        stats = await asyncio.gather(*(s["kernel"].value(TRAINER_STATS) for s in group))
        await asyncio.gather(*(s["kernel"].execute("trainer.stop(timeout=10)\ntrainer.reset()", timeout=120)
                               for s in group))
        # history is emptied by reset(), so it counts this step's views only (``updates`` counts them all)
        rates = [(st["n"] - 1) / (st["last"] - st["first"]) if st["last"] and st["last"] > st["first"] else 0.0
                 for st in stats]
        steps = [st["steps"] / st["last"] if st["last"] else 0.0 for st in stats]
        rows.append((n, min(rates), float(np.mean(rates)), float(np.mean(steps))))
        log(f"live trainers: {n} at once -> slowest {min(rates):.1f} updates/s, mean {np.mean(rates):.1f}; "
            f"{np.mean(steps):.0f} training steps/s each")
        if min(rates) < LIVE_TARGET:
            break
        capacity = n
        await asyncio.sleep(2)
    return capacity, rows


# --------------------------------------------------------------------------- the run

async def load_phase(hub, users, passwords, tokens, course, args, memory):
    from playwright.async_api import async_playwright

    cells = hubtools.notebook_cells(APP)
    kernel_users, browser_users = users[:len(users) - args.browsers], users[len(users) - args.browsers:]
    errors, results = [], {"build_s": []}
    for u in browser_users:  # what their nbgitpuller link does: the course into ~/vae-loss-lab
        query = urllib.parse.urlencode({"repo": f"file://{course}", "branch": "main", "targetpath": "vae-loss-lab"})
        status, _, body = await asyncio.to_thread(hub.request, "GET", f"/user/{u}/git-pull/api?{query}", None,
                                                  tokens[u], None, 300)
        if status != 200 or b'"phase": "finished"' not in body:
            errors.append(f"{u}: nbgitpuller did not finish ({status}): {body[-300:]!r}")
    log(f"{len(kernel_users)} kernels run the app notebook over the hub's websockets")
    t0 = time.perf_counter()
    students = await asyncio.gather(*(kernel_student(hub, u, tokens[u], cells, results, errors) for u in kernel_users))
    log(f"  built in {time.perf_counter() - t0:.0f} s (each {min(results['build_s']):.0f}-"
        f"{max(results['build_s']):.0f} s)")
    kernel_ms, browser_ms, reloads = [], [], []
    async with async_playwright() as pw:
        ready, failed, go = [], [], asyncio.Event()
        browsers = [asyncio.ensure_future(browser_student(pw, hub, u, passwords[u], args.seconds, args.think,
                                                          browser_ms, errors, ready, go, failed, reloads))
                    for u in browser_users]
        log(f"{len(browser_users)} browsers log in on the hub's page and open the app in Voila")
        t1 = time.perf_counter()
        while len(ready) + len(failed) < len(browser_users):
            for b in browsers:
                if b.done() and b.exception():
                    raise b.exception()
            await asyncio.sleep(1)
        log(f"  pages ready in {time.perf_counter() - t1:.0f} s; every student moves the β slider for "
            f"{args.seconds:g} s")
        memory.start()
        go.set()
        await asyncio.gather(*(move_sliders(s, args.seconds, args.think, kernel_ms, errors) for s in students),
                             *browsers)
        memory.stop()
    log(f"live β trainers, {args.trainer_seconds:g} s per step")
    capacity, rows = await trainer_capacity(students, args.trainer_seconds, args.max_trainers)
    for s in students:
        await s["kernel"].close()
    return {"kernel_ms": kernel_ms, "browser_ms": browser_ms, "errors": errors, "capacity": capacity,
            "trainer_rows": rows, "build_s": results["build_s"], "reloads": reloads}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--browsers", type=int, default=3, help="of the students, how many use a real browser")
    p.add_argument("--seconds", type=float, default=60.0, help="how long everyone moves the slider")
    p.add_argument("--think", type=float, default=0.3, help="mean pause between two moves of one student (s)")
    p.add_argument("--trainer-seconds", type=float, default=10.0)
    p.add_argument("--max-trainers", type=int, default=17, help="stop the ramp here (at most the kernel clients)")
    p.add_argument("--shared", default="/var/tmp/vaelab-bench/data", help="shared data folder (kept between runs)")
    p.add_argument("--smoke", action="store_true", help="the β-sweep with 2 epochs per model instead of 40, in "
                   "the shared cache and the students' kernels (same models, same pictures, same work per move; "
                   "for a machine too busy to train the full sweep first)")
    args = p.parse_args(argv)
    reason = hubtools.hub_unavailable()
    if reason:
        print(f"bench_hub: {reason}", file=sys.stderr)
        return 2
    if args.browsers:
        from coursekit.browser import browser_unavailable

        if browser_unavailable():
            print(f"bench_hub: no browsers ({browser_unavailable()}); kernel clients only", file=sys.stderr)
            args.browsers = 0
    load = os.getloadavg()
    log(f"load average {load[0]:.2f} {load[1]:.2f} on {os.cpu_count()} cores (other work on the machine counts)")
    shared = Path(args.shared)
    shared.mkdir(parents=True, exist_ok=True)
    prepare_shared(shared, args.smoke)
    before = snapshot(shared)

    base = Path(tempfile.mkdtemp(prefix="vaelab-bench-hub-", dir="/tmp"))
    base.chmod(0o755)
    users = [f"vlb-{i:02d}" for i in range(1, args.students + 1)]
    passwords = {u: secrets.token_urlsafe(12) for u in users}
    hubtools.ensure_group(GROUP)
    try:
        log(f"creating {len(users)} accounts")
        for u in users:
            hubtools.create_user(u, GROUP, passwords[u])
        reason = hubtools.unprivileged_unavailable(users[0])
        if reason:
            print(f"bench_hub: {reason}", file=sys.stderr)
            return 2
        course = hubtools.bare_course_repo(base)
        with hubtools.Hub(base / "state", shared_cache=str(shared / "cache"), group=GROUP,
                          course_repo=str(course),
                          extra_config='c.Spawner.environment["SMOKE"] = "1"\n' if args.smoke else "") as hub:
            memory = Memory(hub, users)
            memory.sample()
            idle_hub_mb = memory.hub_mb
            log(f"hub up; starting {len(users)} servers through the API")
            t0 = time.perf_counter()
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(hub.start_server, users))
            spawn_s = time.perf_counter() - t0
            log(f"  all servers ready in {spawn_s:.0f} s")
            tokens = {u: hub.user_token(u) for u in users}
            r = asyncio.run(load_phase(hub, users, passwords, tokens, course, args, memory))
    finally:
        for u in users:
            hubtools.delete_user(u)
        subprocess.run(["groupdel", GROUP], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    unchanged = snapshot(shared) == before
    kp, bp = percentiles(r["kernel_ms"]), percentiles(r["browser_ms"])
    student_mb = list(memory.student_mb.values())
    kernel_mb = list(memory.kernel_mb.values())
    print(f"\n### Class server load test: {args.students} students, {args.seconds:g} s of β-slider moves "
          f"({os.cpu_count()} CPU cores, load average before {load[0]:.2f}"
          f"{'; smoke-mode sweep' if args.smoke else ''})\n")
    print("| what | n | p50 (ms) | p95 (ms) | max (ms) | target |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print(f"| β explorer, kernel clients over the proxied websocket (new picture received) | {len(r['kernel_ms'])} | "
          f"{kp[0]:.0f} | {kp[1]:.0f} | {kp[2]:.0f} | |")
    print(f"| β explorer, real browsers (key press to picture on screen) | {len(r['browser_ms'])} | {bp[0]:.0f} | "
          f"{bp[1]:.0f} | {bp[2]:.0f} | p95 ≤ {BROWSER_TARGET_MS:.0f} ms: "
          f"{'met' if bp[1] <= BROWSER_TARGET_MS else 'MISSED'} |")
    print("\n| errors | pages reloaded | shared cache unchanged | servers started (s) | app built per kernel (s) |")
    print("| ---: | ---: | --- | ---: | ---: |")
    print(f"| {len(r['errors'])} | {len(r['reloads'])} | {'yes' if unchanged else 'NO'} | {spawn_s:.0f} | "
          f"{np.median(r['build_s']):.0f} (median), {max(r['build_s']):.0f} (max) |")
    print("\n| memory (PSS, peak) | MB |")
    print("| --- | ---: |")
    print(f"| hub + proxy + culler, in all (idle {idle_hub_mb:.0f}) | {memory.hub_mb:.0f} |")
    print(f"| hub + proxy + culler, per student | {memory.hub_mb / args.students:.1f} |")
    print(f"| one student's server and kernel, median / max | {np.median(student_mb):.0f} / {max(student_mb):.0f} |")
    print(f"| of which the kernel, median / max | {np.median(kernel_mb):.0f} / {max(kernel_mb):.0f} |")
    print(f"| all {args.students} students | {sum(student_mb):.0f} |")
    print("\n| live β trainers at once | slowest (updates/s) | mean (updates/s) | training steps/s, each |")
    print("| ---: | ---: | ---: | ---: |")
    for n, slowest, mean, steps in r["trainer_rows"]:
        print(f"| {n} | {slowest:.1f} | {mean:.1f} | {steps:.0f} |")
    print(f"\nlive β trainers this machine runs at ≥ {LIVE_TARGET:g} updates/s each: {r['capacity']}")
    for e in r["errors"][:20]:
        print(f"error: {e}")
    print(json.dumps({"kernel_ms": kp, "browser_ms": bp, "errors": len(r["errors"]), "unchanged": unchanged,
                      "hub_mb": memory.hub_mb, "student_mb": float(np.median(student_mb)),
                      "kernel_mb": float(np.median(kernel_mb)), "capacity": r["capacity"]}))
    return 0 if not r["errors"] and unchanged else 1


if __name__ == "__main__":
    sys.exit(main())
