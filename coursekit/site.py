"""The widgets of the executed course, made readable without a kernel or a network: what the
course site (``coursekit.course``, a Jupyter Book) shows where a notebook displayed a widget.

An executed notebook keeps its widgets only as saved widget state, which a page can show only
through a JavaScript widget manager fetched from a CDN: offline, every slider, explorer and progress
bar would be an empty gap. :func:`snapshot_widgets` replaces each displayed widget by a static
picture of it as it was when the cell finished (sliders with their values, buttons, the images and
text of its outputs), marked as a snapshot.

The KL and β explorers stay live: a kernel started with :data:`KERNEL_ARGS` (the IPython extension
in this module; ``coursekit.executed`` runs the course that way) hands the site each widget's
``site_view()`` with its display, and :func:`live_views` turns it into a view that a small script
(``site_assets/vaelab-live.js``, no libraries) runs in the page: the β explorer's panels become PNG
files beside the page, the KL explorer's picture is computed in the page from μ and σ. Nothing is
fetched from the network.

    kinds = live_views(executed_notebook, extra_dir, "05_beta_vae")  # before the snapshots
    nb = snapshot_widgets(executed_notebook)
    copy_live_assets(static_dir)                 # the script and style the pages link

For pages that nbconvert writes (the decks, :func:`html_exporter`), :func:`copy_mathjax` puts
MathJax 2 from the ``jupyter-server-mathjax`` package beside them; the course site has its own
MathJax (``coursekit.course``).
"""

from __future__ import annotations

import base64
import html
import json
import math
import shutil
from pathlib import Path
from urllib.parse import quote

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MATHJAX_DIR = "mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,local/vaelab"
# The package ships the STIX web fonts only, so HTML-CSS output is told to use them (and not to look for
# TeX fonts installed on the reader's machine, which would mix two typefaces).
_MATHJAX_LOCAL_CONFIG = """MathJax.Hub.Config({"HTML-CSS": {webFont: "STIX-Web", availableFonts: [],
  preferredFont: null, imageFont: null}});
MathJax.Ajax.loadComplete("[MathJax]/config/local/vaelab.js");
"""
# What MathJax 2 needs for TeX input and HTML-CSS output; the rest of the package (SVG output,
# accessibility maps, translations) is left out of the site.
_MATHJAX_SKIP = ("a11y", "SVG", "localization", "unpacked", "*.otf", "*.eot", "*.svg")
SNAPSHOT_NOTE = "a snapshot of an interactive widget: run the notebook to move it"

_CSS = ("<style>.vaelab-snapshot{border-left:3px solid #cfd8e3;padding:4px 0 4px 10px;margin:4px 0}"
        ".vaelab-snapshot .note{color:#777;font-size:0.8em;font-style:italic;margin-bottom:4px}"
        ".vaelab-snapshot .row{display:flex;flex-direction:row;align-items:flex-start;gap:12px;flex-wrap:wrap}"
        ".vaelab-snapshot .col{display:flex;flex-direction:column;gap:4px}"
        ".vaelab-snapshot .ctl{display:flex;align-items:center;gap:8px;font-size:0.95em}"
        ".vaelab-snapshot .ctl input[type=range]{width:220px}"
        ".vaelab-snapshot img{max-width:100%}</style>")


def _ref(value) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


class _Snapshot:
    """Renders saved widget models (``nb.metadata.widgets``) as static HTML."""

    def __init__(self, state: dict):
        self.state = state

    def model(self, model_id: str) -> dict | None:
        return self.state.get(model_id)

    def hidden(self, s: dict) -> bool:
        layout = self.model(_ref(s.get("layout")) or "")
        ls = layout["state"] if layout else {}
        return ls.get("display") == "none" or ls.get("visibility") == "hidden"

    def size_style(self, s: dict) -> str:
        layout = self.model(_ref(s.get("layout")) or "")
        ls = layout["state"] if layout else {}
        return "".join(f"{k}:{ls[k]};" for k in ("width", "height", "min_height") if ls.get(k)).replace("_", "-")

    def render(self, model_id: str, depth: int = 0) -> str:
        m = self.model(model_id)
        if m is None or depth > 50:
            return ""
        s = m.get("state", {})
        if self.hidden(s):
            return ""
        name = m.get("model_name", "")
        label = html.escape(str(s.get("description", "") or ""))
        label_html = f"<span>{label}</span>" if label else ""
        if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"):
            kind = "col" if name in ("VBoxModel", "GridBoxModel") else "row"
            inner = "".join(self.render(_ref(c) or "", depth + 1) for c in s.get("children", []))
            return f'<div class="{kind}">{inner}</div>'
        if name in ("TabModel", "AccordionModel", "StackModel"):
            children = s.get("children", [])
            index = s.get("selected_index") or 0
            if not children or not 0 <= index < len(children):
                return ""
            titles = s.get("titles") or []
            title = f"<b>{html.escape(str(titles[index]))}</b>" if index < len(titles) and titles[index] else ""
            return f'<div class="col">{title}{self.render(_ref(children[index]) or "", depth + 1)}</div>'
        if name == "OutputModel":
            return "".join(self.output(o, depth) for o in s.get("outputs", []))
        if name == "ImageModel":
            data = next((b["data"] for b in m.get("buffers", []) if b.get("path") == ["value"]), None)
            if data is None:
                return ""
            fmt = html.escape(str(s.get("format", "png")))
            mime = "svg+xml" if fmt == "svg" else fmt
            return f'<img src="data:image/{mime};base64,{data}" style="{self.size_style(s)}" alt="{label}">'
        if name in ("HTMLModel", "HTMLMathModel"):
            return f'<div class="ctl" style="{self.size_style(s)}">{label_html}<div>{s.get("value", "")}</div></div>'
        if name == "LabelModel":
            return f'<div class="ctl">{label_html}<span>{html.escape(str(s.get("value", "")))}</span></div>'
        if name in ("IntSliderModel", "FloatSliderModel", "FloatLogSliderModel", "SelectionSliderModel"):
            return self.slider(name, s, label_html)
        if name in ("IntRangeSliderModel", "FloatRangeSliderModel", "SelectionRangeSliderModel"):
            return f'<div class="ctl">{label_html}<code>{html.escape(str(s.get("value", s.get("index"))))}</code></div>'
        if name in ("DropdownModel", "RadioButtonsModel", "ToggleButtonsModel", "SelectModel"):
            labels, index = s.get("_options_labels", []), s.get("index")
            chosen = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else ""
            return (f'<div class="ctl">{label_html}<select disabled><option>{html.escape(chosen)}</option>'
                    "</select></div>")
        if name == "CheckboxModel":
            checked = " checked" if s.get("value") else ""
            return f'<div class="ctl"><input type="checkbox" disabled{checked}>{label_html}</div>'
        if name in ("ButtonModel", "ToggleButtonModel"):
            return f"<button disabled>{label or '&nbsp;'}</button>"
        if name in ("IntProgressModel", "FloatProgressModel"):
            return (f'<div class="ctl">{label_html}<progress value="{s.get("value", 0)}" '
                    f'max="{s.get("max", 100)}"></progress></div>')
        if name in ("TextModel", "TextareaModel", "IntTextModel", "FloatTextModel", "BoundedIntTextModel",
                    "BoundedFloatTextModel"):
            return (f'<div class="ctl">{label_html}<input type="text" disabled '
                    f'value="{html.escape(str(s.get("value", "")))}"></div>')
        return ""

    def slider(self, name: str, s: dict, label_html: str) -> str:
        if name == "SelectionSliderModel":
            labels = s.get("_options_labels", [])
            index = s.get("index") or 0
            lo, hi, pos = 0, max(len(labels) - 1, 1), index
            readout = labels[index] if 0 <= index < len(labels) else ""
        else:
            value = s.get("value", 0)
            lo, hi = s.get("min", 0), s.get("max", 100)
            pos = math.log(value, s.get("base", 10)) if name == "FloatLogSliderModel" and value > 0 else value
            fmt = s.get("readout_format") or ("d" if name == "IntSliderModel" else ".2f")
            try:
                readout = format(value, fmt)
            except (TypeError, ValueError):
                readout = str(value)
        return (f'<div class="ctl">{label_html}<input type="range" disabled min="{lo}" max="{hi}" step="any" '
                f'value="{pos}"><code>{html.escape(str(readout))}</code></div>')

    def output(self, out: dict, depth: int) -> str:
        kind = out.get("output_type")
        if kind == "stream":
            return f"<pre>{html.escape(''.join(out.get('text', '')))}</pre>"
        if kind == "error":
            return f"<pre>{html.escape(out.get('ename', ''))}: {html.escape(out.get('evalue', ''))}</pre>"
        data = out.get("data", {})
        if WIDGET_VIEW in data:
            return self.render(data[WIDGET_VIEW].get("model_id", ""), depth + 1)
        for mime in ("image/png", "image/jpeg"):
            if mime in data:
                payload = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
                return f'<img src="data:{mime};base64,{payload.strip()}">'
        if "image/svg+xml" in data:
            return "".join(data["image/svg+xml"])
        if "text/html" in data:
            return "".join(data["text/html"])
        if "text/plain" in data:
            return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
        return ""


def snapshot_widgets(nb):
    """Replace, in place, every displayed widget of an executed notebook by static HTML of its saved
    state, and drop the saved state (so the page loads no widget manager). Returns the notebook.

    Widgets whose state was not saved keep their text fallback."""
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    snap = _Snapshot(saved)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            model_id = data[WIDGET_VIEW].get("model_id", "")
            body = snap.render(model_id) if model_id in saved else ""
            if not body:
                continue  # nothing visible saved (a closed widget): the page shows its text
            out["data"] = {"text/html": f'{_CSS}<div class="vaelab-snapshot"><div class="note">{SNAPSHOT_NOTE}'
                                        f"</div>{body}</div>",
                           "text/plain": data.get("text/plain", "")}
    nb.metadata.pop("widgets", None)
    return nb


def mathjax_source() -> Path | None:
    """The folder of MathJax 2 that the ``jupyter-server-mathjax`` package ships (None if not installed)."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    return static if (static / "MathJax.js").is_file() else None


def copy_mathjax(site_dir) -> bool:
    """Copy the parts of MathJax the pages use into ``site_dir/mathjax``; False when there is no local copy."""
    source = mathjax_source()
    if source is None:
        return False
    target = Path(site_dir) / MATHJAX_DIR
    if not target.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*_MATHJAX_SKIP))
        (target / "config" / "local").mkdir(parents=True, exist_ok=True)
        (target / "config" / "local" / "vaelab.js").write_text(_MATHJAX_LOCAL_CONFIG, encoding="utf-8")
    return True


# nbconvert's lab page without its require.js tag (fetched from a CDN, needed only by the widget manager the
# site does without): the pages then load nothing from the network.
_PAGE_TEMPLATE = ("{%- extends 'index.html.j2' -%}\n"
                  "{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}\n")


def html_exporter(site_dir=None):
    """nbconvert's HTML exporter for the site: the lab page without require.js, images embedded, MathJax
    from ``site_dir/mathjax`` when a local copy could be put there (see :func:`copy_mathjax`), else from
    the CDN."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({"vaelab-page.html.j2": _PAGE_TEMPLATE})],
                            template_file="vaelab-page.html.j2")
    exporter.embed_images = True
    if site_dir is not None and copy_mathjax(site_dir):
        exporter.mathjax_url = f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"
    return exporter


# --------------------------------------------------------------------------- live views

LIVE_MIME = "application/vnd.vaelab.live-view+json"
# coursekit.executed starts each kernel with the extension below
KERNEL_ARGS = ["--ext=coursekit.site"]
ASSETS = Path(__file__).with_name("site_assets")
LIVE_SUFFIX = "_live"  # next to page NAME.html: NAME_live/, its panels
LIVE_NAMES = {"beta-explorer": "the β explorer", "kl-explorer": "the KL explorer"}
LIVE_WAITING = "live view: it moves in this page once its script has run (until then, a snapshot)"


def _live_printer(widget):
    """A widget's display in a site build: as usual, plus its ``site_view()`` when it has one."""
    bundle = widget._repr_mimebundle_()
    view = getattr(widget, "site_view", None)
    return {**bundle, LIVE_MIME: view()} if bundle is not None and callable(view) else bundle


def load_ipython_extension(ip) -> None:
    """``--ext=coursekit.site``: widgets that describe themselves to the site (``site_view()``) do so when they
    are displayed, as one more entry of their output (:data:`LIVE_MIME`); nothing else changes."""
    ip.display_formatter.mimebundle_formatter.for_type_by_name("ipywidgets.widgets.widget", "Widget",
                                                                _live_printer)


def _saved(saved: dict, model_id, key: str, default):
    return saved.get(model_id or "", {}).get("state", {}).get(key, default)


def _live_html(kind: str, config: dict, fallback: str) -> str:
    data = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")  # no "</script>" inside
    return (f'<div class="vaelab-live" data-kind="{kind}"><div class="note">{LIVE_WAITING}</div>'
            f'<script type="application/json" class="vaelab-live-data">{data}</script>'
            f'<div class="vaelab-live-fallback">{fallback}</div></div>')


def _beta_view(view: dict, saved: dict, site_dir: Path, page: str, n: int) -> str:
    folder = site_dir / f"{page}{LIVE_SUFFIX}"
    folder.mkdir(parents=True, exist_ok=True)
    panels = []
    for i, png in enumerate(view["panels"]):
        (folder / f"beta{n}_{i}.png").write_bytes(base64.b64decode(png))
        panels.append(quote(f"{folder.name}/beta{n}_{i}.png"))
    start = _saved(saved, view.get("slider"), "index", view["start"])
    start = start if isinstance(start, int) and 0 <= start < len(panels) else view["start"]
    config = {k: view[k] for k in ("description", "betas", "labels", "info")} | {"panels": panels, "start": start}
    fallback = f'<div>{view["info"][start]}</div><img src="{html.escape(panels[start])}" alt="β explorer">'
    return _live_html("beta-explorer", config, fallback)


def _kl_view(view: dict, saved: dict, site_dir: Path, page: str, n: int) -> str:
    config = {k: v for k, v in view.items() if k not in ("model_id", "toggle")}
    for name in ("mu", "sigma", "logvar"):
        config[name] = view[name] | {"value": _saved(saved, view[name].get("model_id"), "value", view[name]["value"])}
    config["use_logvar"] = bool(_saved(saved, view["toggle"].get("model_id"), "value", view["use_logvar"]))
    config["toggle_label"] = view["toggle"]["label"]
    return _live_html("kl-explorer", config, _Snapshot(saved).render(view.get("model_id", "")))


_RENDERERS = {"beta-explorer": _beta_view, "kl-explorer": _kl_view}


def live_views(nb, site_dir, page: str) -> list[str]:
    """Turn, in place, every output that carries a widget's ``site_view()`` (see :data:`KERNEL_ARGS`) into a
    view that runs in the page, writing its files under ``site_dir/<page>_live/``; put a note at the top of
    the page saying which views are live. Returns their kinds in page order. Call it before
    :func:`snapshot_widgets`, which turns the remaining widgets into snapshots."""
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    kinds: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            view = data.pop(LIVE_MIME, None)
            render = _RENDERERS.get(view.get("kind")) if isinstance(view, dict) else None
            if render is not None:
                body = render(view, saved, Path(site_dir), page, kinds.count(view["kind"]))
                out["data"] = {"text/html": body, "text/plain": data.get("text/plain", "")}
                kinds.append(view["kind"])
    if kinds:
        import nbformat

        names = list(dict.fromkeys(LIVE_NAMES[k] for k in kinds))
        listed = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        banner = (f'<div class="vaelab-live-banner"><b>Live on this page:</b> {listed} '
                  f"{'move' if len(names) > 1 else 'moves'} in your browser, with no Python and no network. "
                  "Every other widget is a snapshot of the notebook as it was run.</div>")
        nb.cells.insert(1 if nb.cells else 0, nbformat.v4.new_markdown_cell(banner))
    return kinds


def copy_live_assets(folder) -> Path:
    """Copy the live views' script and style into ``folder`` (the book's ``_static``); returns
    ``folder``."""
    target = Path(folder)
    skip = shutil.ignore_patterns("__pycache__", "*.py")
    shutil.copytree(ASSETS, target, dirs_exist_ok=True, ignore=skip)
    return target
