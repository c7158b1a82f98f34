"""How long the course site takes to build, how big it is, how fast its live views answer.

The site is the Jupyter Book that ``make course`` writes to ``build/site`` (``coursekit.course``).
By default this measures that build as it is; ``--build`` first builds it again from the executed
notebooks (``build/executed``, or ``--executed DIR``) into a temporary folder and times that build
(staging, Jupyter Book, the link check: what ``make course`` does once the executed copies are
current); ``--tiny`` builds the browser tests' small site (a 3-β sweep trained in seconds) as a
smoke check; ``--site DIR`` measures another built site. Then, in Debian's Chromium, the site
served on 127.0.0.1 and every other request aborted:

1. size: the whole site and its parts (MathJax, the theme, the pictures, each page, the β
   explorer's panels);
2. open → answer, over ``--opens`` fresh page loads of each page with a live view: when the live
   views were ready (ms since the page was opened, as the page measures it), the first move (key
   press → painted), and their sum;
3. per move: key press → the view changed and two frames were painted, for the β slider and for μ
   and σ, ``--moves`` arrow presses each (back and forth): p50 / p95 / max against the 100 ms
   target.

The CPU and the load average are printed first: other jobs on the cores count.

    python benchmarks/bench_site.py [--build] [--site build/site] [--tiny] [--moves 40] [--opens 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "coursekit"))  # the browser tests' helpers

TARGET_MS = 100.0
SLIDERS = {"beta-explorer": ["vaelab-beta-slider"],
           "kl-explorer": ["vaelab-kl-mu", "vaelab-kl-sigma"]}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def size_table(site: Path) -> list[tuple[str, int]]:
    def size(p: Path) -> int:
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return p.stat().st_size

    parts = [site / "_static" / "mathjax", site / "_static", site / "_images"]
    parts += sorted(site.glob("*_live")) + sorted(site.glob("*.html"))
    parts += [site / "guides", site / "searchindex.js"]
    rows, seen = [], 0
    for p in parts:
        if p.exists():
            n = size(p) - (size(site / "_static" / "mathjax") if p == site / "_static" else 0)
            label = p.relative_to(site).as_posix() + ("/" if p.is_dir() else "")
            rows.append((label + (" (without MathJax)" if p == site / "_static" else ""), n))
            seen += n
    whole = size(site)
    return rows + [("everything else", whole - seen), ("**whole site**", whole)]


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def measure_page(browser, origin: str, page_name: str, moves: int, opens: int) -> tuple[list, list]:
    from test_site_browser import MOVE_JS, open_offline

    url = origin + page_name
    opened = []
    for _ in range(opens):
        page = open_offline(browser, url, allowed=origin)
        # Each live view of the page in turn: press its first slider as soon as the views are ready.
        page.wait_for_selector('.vaelab-live[data-ready="true"]', timeout=60_000)
        views = ".vaelab-live"
        readies = page.eval_on_selector_all(views, "es => es.map(e => e.dataset.readyMs)")
        ready = max(map(float, readies))
        for kind in page.eval_on_selector_all(views, "es => es.map(e => e.dataset.kind)"):
            selector = f'.vaelab-live[data-kind="{kind}"]'
            page.evaluate(MOVE_JS, selector)
            page.focus(f"{selector} input.{SLIDERS[kind][0]}")
            page.keyboard.press("ArrowRight")
            page.wait_for_function("() => window.__vaelabMove.ms !== null", timeout=10_000)
            move = page.evaluate("() => window.__vaelabMove.ms")
            opened.append((kind, ready, move, ready + move))
        assert page.blocked == [], page.blocked
        page.context.close()

    page = open_offline(browser, url, allowed=origin)
    page.wait_for_selector('.vaelab-live[data-ready="true"]', timeout=60_000)
    per_move = []
    for kind in page.eval_on_selector_all(".vaelab-live", "els => els.map(e => e.dataset.kind)"):
        selector = f'.vaelab-live[data-kind="{kind}"]'
        for cls in SLIDERS.get(kind, []):
            slider = f"{selector} input.{cls}"
            page.focus(slider)
            page.keyboard.press("Home")
            top = int(page.get_attribute(slider, "max"))
            times, key = [], "ArrowRight"
            for _ in range(moves):
                value = int(page.eval_on_selector(slider, "e => e.value"))
                key = "ArrowLeft" if value >= top else "ArrowRight" if value <= 0 else key
                page.evaluate(MOVE_JS, selector)
                page.keyboard.press(key)
                page.wait_for_function("() => window.__vaelabMove.ms !== null", timeout=10_000)
                times.append(page.evaluate("() => window.__vaelabMove.ms"))
            per_move.append((kind, cls.removeprefix("vaelab-"), times))
    page.context.close()
    return opened, per_move


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, help="measure this built site (default: build/site)")
    parser.add_argument("--build", action="store_true",
                        help="build the site from the executed notebooks first, and time it")
    parser.add_argument("--executed", type=Path,
                        help="with --build: the executed notebooks (default build/executed)")
    parser.add_argument("--tiny", action="store_true",
                        help="build the browser tests' small site instead")
    parser.add_argument("--moves", type=int, default=40, help="arrow presses per slider (40)")
    parser.add_argument("--opens", type=int, default=5, help="page loads for open → answer (5)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright
    from test_site_browser import Served

    from coursekit import course
    from coursekit.browser import launch_chromium

    print(f"{cpu_name()}, {os.cpu_count()} CPUs; load average {load()}\n")
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-site-") as tmp:
        t0 = time.perf_counter()
        if args.tiny:
            from test_site_browser import build_site

            site = build_site(Path(tmp))[0]
        elif args.build:
            site = Path(tmp) / "site"
            course.build_course(args.executed or course.EXECUTED, site, work=Path(tmp) / "work")
        else:
            site = args.site or course.SITE
            if not (site / "index.html").is_file():
                print(f"no site in {site}: run `make course`, or use --build, --tiny or --site")
                return 1
        if args.tiny or args.build:
            what = ("the small site, its live unit executed" if args.tiny
                    else "staging, Jupyter Book, the checks")
            seconds = time.perf_counter() - t0
            print(f"\nbuilt {site} in {seconds:.1f} s ({what}); load average after: {load()}\n")
        print("| part of the site | size |\n| --- | ---: |")
        for name, n in size_table(site):
            print(f"| {name} | {n / 1e6:.2f} MB |")
        live = [p.name for p in sorted(site.glob("*.html"))
                if 'class="vaelab-live"' in p.read_text(encoding="utf-8")]
        served = Served(site)
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                for name in live:
                    opened, per_move = measure_page(browser, served.origin, name, args.moves,
                                                    args.opens)
                    print(f"\n### {name} (Chromium, served on 127.0.0.1, other hosts blocked)\n")
                    print(f"| {args.opens} fresh loads | median | max |\n| --- | ---: | ---: |")
                    kinds = list(dict.fromkeys(o[0] for o in opened))
                    rows = [("opening → the live views ready", None, 1)]
                    rows += [(f"first move of the {k}: key → painted", k, 2) for k in kinds]
                    rows += [(f"**opening → the {k} answering**", k, 3) for k in kinds]
                    for label, kind, i in rows:
                        xs = [o[i] for o in opened if kind is None or o[0] == kind]
                        print(f"| {label} | {statistics.median(xs):.0f} ms | {max(xs):.0f} ms |")
                    print(f"\n| slider | moves | p50 | p95 | max | p95 ≤ {TARGET_MS:.0f} ms |")
                    print("| --- | ---: | ---: | ---: | ---: | --- |")
                    for _, slider, times in per_move:
                        ok = "yes" if percentile(times, 95) <= TARGET_MS else "no"
                        print(f"| {slider} | {len(times)} | {percentile(times, 50):.0f} ms "
                              f"| {percentile(times, 95):.0f} ms | {max(times):.0f} ms | {ok} |")
                browser.close()
        finally:
            served.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
