"""How big the course site is and how fast its live views answer in a browser, with no kernel.

The site is built as ``make course`` builds it (``coursekit.course.build_course``): by default only the app page
(``notebooks/beta_explorer_app.ipynb``: the KL explorer and the β explorer over the course's sweep, trained
first when the cache lacks it), into a temporary folder; ``--site DIR`` measures a site already built (e.g.
``build/`` after ``make course``); ``--tiny`` builds the browser tests' one-page site (a 3-β sweep trained in
seconds) as a smoke check. Then, in Debian's Chromium from ``file://`` with every other request aborted:

1. size: the whole site, and its parts (MathJax, the live views' script and style, each page, its panels);
2. open → answer, over ``--opens`` fresh page loads: when the live views were ready (ms since the page was
   opened, as the page measures it), the first move (key press → painted) and their sum;
3. per move: key press → the view changed and two frames were painted, for the β slider and for μ and σ,
   ``--moves`` arrow presses each (back and forth): p50 / p95 / max against the 100 ms target.

The load average is printed first: other jobs on the cores count.

    python benchmarks/bench_site.py [--site build] [--tiny] [--moves 40] [--opens 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TARGET_MS = 100.0
SLIDERS = {"beta-explorer": ["vaelab-beta-slider"], "kl-explorer": ["vaelab-kl-mu", "vaelab-kl-sigma"]}


def size_table(site: Path) -> list[tuple[str, int]]:
    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size

    rows = [(f"{p.name}/" if p.is_dir() else p.name, size(p)) for p in sorted(site.iterdir())
            if not p.name.startswith(".")]
    return rows + [("**whole site**", sum(n for _, n in rows))]


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def measure_page(browser, page_path: Path, moves: int, opens: int) -> tuple[list, list]:
    from test_site_browser import MOVE_JS, open_offline

    opened = []
    for _ in range(opens):
        page = open_offline(browser, page_path.as_uri())
        # Each live view of the page in turn: press its first slider as soon as the views are ready.
        page.wait_for_selector('.vaelab-live[data-ready="true"]', timeout=60_000)
        ready = max(map(float, page.eval_on_selector_all(".vaelab-live", "els => els.map(e => e.dataset.readyMs)")))
        for kind in page.eval_on_selector_all(".vaelab-live", "els => els.map(e => e.dataset.kind)"):
            selector = f'.vaelab-live[data-kind="{kind}"]'
            page.evaluate(MOVE_JS, selector)
            page.focus(f"{selector} input.{SLIDERS[kind][0]}")
            page.keyboard.press("ArrowRight")
            page.wait_for_function("() => window.__vaelabMove.ms !== null", timeout=10_000)
            move = page.evaluate("() => window.__vaelabMove.ms")
            opened.append((kind, ready, move, ready + move))
        assert page.blocked == [], page.blocked
        page.context.close()

    page = open_offline(browser, page_path.as_uri())
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
    parser.add_argument("--site", type=Path, help="measure this built site instead of building one")
    parser.add_argument("--tiny", action="store_true", help="build the browser tests' one-page site instead")
    parser.add_argument("--moves", type=int, default=40, help="arrow presses per slider (default 40)")
    parser.add_argument("--opens", type=int, default=5, help="fresh page loads for open → answer (default 5)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from coursekit import course
    from coursekit.browser import launch_chromium
    from vaeutils import config

    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"mode {'smoke' if config.is_smoke() else 'full'}\n")
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-site-") as tmp:
        t0 = time.perf_counter()
        if args.site:
            site = args.site
        elif args.tiny:
            from test_site_browser import build_site

            site = build_site(Path(tmp))
        else:
            site = Path(tmp) / "site"
            course.build_course(ROOT / "notebooks", site, pages=course.EXTRA_PAGES)
        if not args.site:
            print(f"\nbuilt {site} in {time.perf_counter() - t0:.0f} s\n")
        print("| part of the site | size |\n| --- | ---: |")
        for name, n in size_table(site):
            print(f"| {name} | {n / 1e6:.2f} MB |")
        live = [p for p in sorted(site.glob("*.html")) if 'class="vaelab-live"' in p.read_text(encoding="utf-8")]
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            for page_path in live:
                opened, per_move = measure_page(browser, page_path, args.moves, args.opens)
                print(f"\n### {page_path.name} (Chromium, file://, network blocked)\n")
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
                for _, name, times in per_move:
                    ok = "yes" if percentile(times, 95) <= TARGET_MS else "no"
                    print(f"| {name} | {len(times)} | {percentile(times, 50):.0f} ms | {percentile(times, 95):.0f} ms "
                          f"| {max(times):.0f} ms | {ok} |")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
