"""The static course site: widgets become snapshots a page can show without a kernel or a network."""

from __future__ import annotations

import io

import ipywidgets as widgets
import nbformat
import pytest
from PIL import Image

from coursekit import site


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(buf, format="png")
    return buf.getvalue()


def widget_tree(root: widgets.Widget) -> list[widgets.Widget]:
    """``root``, its children, and their layouts and styles: the models a saved state needs."""
    found = []
    stack = [root]
    while stack:
        w = stack.pop()
        if isinstance(w, widgets.Widget) and w not in found:
            found.append(w)
            stack.extend(getattr(w, name, None) for name in ("layout", "style"))
            stack.extend(getattr(w, "children", ()))
    return found


def _executed_notebook(root: widgets.Widget) -> nbformat.NotebookNode:
    """A notebook as nbclient leaves it: one cell displaying ``root``, the widget state saved."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        site.WIDGET_VIEW: {"model_id": root.model_id, "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(...)"})]
    nb.cells = [cell]
    state = widgets.Widget.get_manager_state(drop_defaults=False, widgets=widget_tree(root))
    nb.metadata["widgets"] = {site.WIDGET_STATE: state}
    return nb


@pytest.fixture
def explorer():
    out = widgets.Output()
    out.outputs = ({"output_type": "display_data", "data": {"image/png": "aWJiYg==", "text/plain": "<Figure>"},
                    "metadata": {}},)
    hidden = widgets.FloatSlider(description="log σ²", value=-1.0)
    hidden.layout.display = "none"
    box = widgets.VBox([
        widgets.HBox([widgets.FloatSlider(description="μ", value=1.5, readout_format=".2f"), hidden,
                      widgets.SelectionSlider(options=[("0.5", 0.5), ("1", 1.0), ("2", 2.0)], value=2.0,
                                              description="β")]),
        widgets.Image(value=_png(), format="png"),
        widgets.HTML('<span class="info">rate <b>3.2</b> nats</span>'),
        widgets.Checkbox(value=True, description="log scale"),
        widgets.Button(description="Start"),
        out,
    ])
    yield box
    for w in widget_tree(box):
        w.close()


def test_snapshot_shows_the_widgets_state(explorer):
    nb = site.snapshot_widgets(_executed_notebook(explorer))
    data = nb.cells[0].outputs[0]["data"]
    assert site.WIDGET_VIEW not in data and "widgets" not in nb.metadata
    page = data["text/html"]
    assert site.SNAPSHOT_NOTE in page
    assert '<code>1.50</code>' in page and 'value="1.5"' in page  # μ with its readout format
    assert "<span>β</span>" in page and 'max="2"' in page and 'value="2"' in page and "<code>2</code>" in page
    assert "log σ²" not in page  # a slider hidden by its layout stays hidden
    assert page.count('<img src="data:image/png;base64,') == 2  # the Image widget and the Output's figure
    assert '<span class="info">rate <b>3.2</b> nats</span>' in page
    assert "checked" in page and "<button disabled>Start</button>" in page
    assert data["text/plain"] == "VBox(...)"


def test_widget_without_saved_state_keeps_its_text(explorer):
    nb = _executed_notebook(explorer)
    nb.cells[0].outputs[0]["data"][site.WIDGET_VIEW]["model_id"] = "0" * 32  # closed before the state was saved
    site.snapshot_widgets(nb)
    data = nb.cells[0].outputs[0]["data"]
    assert site.WIDGET_VIEW in data and "text/html" not in data


def test_notebook_without_widgets_is_unchanged():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("$x^2$")])
    before = nbformat.writes(nb)
    assert nbformat.writes(site.snapshot_widgets(nb)) == before


def test_exporter_uses_a_local_mathjax_when_there_is_one(tmp_path):
    exporter = site.html_exporter(tmp_path)
    if site.mathjax_source() is None:
        assert exporter.mathjax_url.startswith("https://")
        assert not (tmp_path / site.MATHJAX_DIR).exists()
    else:
        assert exporter.mathjax_url.startswith(f"{site.MATHJAX_DIR}/MathJax.js?config=")
        assert (tmp_path / site.MATHJAX_DIR / "MathJax.js").is_file()
        assert (tmp_path / site.MATHJAX_DIR / "config" / "local" / "vaelab.js").is_file()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\n$D_{KL}$")])
    body, _ = exporter.from_notebook_node(nb)
    assert exporter.mathjax_url in body and "$D_{KL}$" in body


# --------------------------------------------------------------------------- live views

def _with_live_view(nb, view: dict) -> nbformat.NotebookNode:
    """``nb`` (from :func:`_executed_notebook`) as a kernel started with site.KERNEL_ARGS leaves it."""
    nb.cells[0].outputs[0]["data"][site.LIVE_MIME] = view
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# A page"))
    return nb


def test_kernel_extension_adds_the_site_view_to_the_display():
    from types import SimpleNamespace

    from IPython.core.formatters import DisplayFormatter

    from vaeutils.widgets import kl_explorer

    formatter = DisplayFormatter()
    site.load_ipython_extension(SimpleNamespace(display_formatter=formatter))
    explorer, plain = kl_explorer(), widgets.IntSlider()
    try:
        data, _ = formatter.format(explorer)
        assert data[site.LIVE_MIME]["kind"] == "kl-explorer" and site.WIDGET_VIEW in data
        data, _ = formatter.format(plain)
        assert site.LIVE_MIME not in data and site.WIDGET_VIEW in data  # a widget without site_view(): as usual
    finally:
        for w in widget_tree(explorer) + [plain]:
            w.close()


def test_kl_explorer_describes_its_sliders_and_scales():
    import json

    from vaeutils.widgets import kl

    explorer = kl.kl_explorer(mu=1.0, sigma=0.5)
    try:
        view = json.loads(json.dumps(explorer.site_view()))  # JSON-able
        assert (view["mu"]["min"], view["mu"]["max"], view["mu"]["value"]) == (*kl.MU_RANGE, 1.0)
        assert 10 ** view["sigma"]["min"] == pytest.approx(kl.SIGMA_RANGE[0])
        assert 10 ** view["sigma"]["max"] == pytest.approx(kl.SIGMA_RANGE[1]) and view["sigma"]["base"] == 10
        assert (view["logvar"]["min"], view["logvar"]["max"]) == kl.LOGVAR_RANGE
        assert view["mu"]["readout_format"] == ".2f" and view["sigma"]["readout_format"] == ".3g"
        assert view["z_range"] == list(kl.Z_RANGE) and view["bar_levels"] == list(kl._BAR_LEVELS)
        assert view["sigma"]["model_id"] == explorer.sigma_slider.model_id and view["use_logvar"] is False
    finally:
        for w in widget_tree(explorer):
            w.close()


def test_kl_view_runs_in_the_page_and_starts_where_the_saved_state_is(tmp_path):
    import json

    from vaeutils.widgets import kl_explorer

    explorer = kl_explorer()
    view = explorer.site_view()  # as displayed, at μ = 0
    explorer.mu_slider.value = -1.25  # moved by a later cell: the saved state has the last position
    nb = _with_live_view(_executed_notebook(explorer), view)
    for w in widget_tree(explorer):
        w.close()
    assert site.live_views(nb, tmp_path, "01_kl") == ["kl-explorer"]
    assert "Live on this page:</b> the KL explorer moves" in nb.cells[1].source  # after the title
    out = nb.cells[2].outputs[0]["data"]
    assert site.LIVE_MIME not in out and site.WIDGET_VIEW not in out
    page = out["text/html"]
    assert 'data-kind="kl-explorer"' in page and 'class="vaelab-live-fallback"' in page
    config = json.loads(page.split('class="vaelab-live-data">')[1].split("</script>")[0])
    assert config["mu"]["value"] == -1.25 and config["sigma"]["max"] == explorer.sigma_slider.max
    site.snapshot_widgets(nb)
    assert nb.cells[2].outputs[0]["data"]["text/html"] == page  # the snapshots leave a live view alone


def test_beta_view_writes_its_panels_next_to_the_page(tmp_path):
    import base64
    import json

    panels = [_png(), _png()[:-1] + b"\0"]
    slider = widgets.SelectionSlider(options=[("0.5", 0.5), ("4", 4.0)], value=4.0, description="β")
    root = widgets.VBox([slider])
    view = {"kind": "beta-explorer", "model_id": root.model_id, "slider": slider.model_id, "description": "β",
            "betas": [0.5, 4.0], "labels": ["0.5", "4"], "panels": [base64.b64encode(p).decode() for p in panels],
            "info": ["<b>β = 0.5</b></script><script>alert(1)</script>", "<b>β = 4</b>"], "start": 1}
    nb = _with_live_view(_executed_notebook(root), view)
    for w in widget_tree(root):
        w.close()
    assert site.live_views(nb, tmp_path, "05 beta") == ["beta-explorer"]
    files = sorted((tmp_path / "05 beta_live").iterdir())
    assert [f.read_bytes() for f in files] == panels
    page = nb.cells[2].outputs[0]["data"]["text/html"]
    data = page.split('class="vaelab-live-data">')[1].split("</script>")[0]
    config = json.loads(data)  # the readout's "</script>" could not end the block early
    assert config["panels"] == ["05%20beta_live/beta0_0.png", "05%20beta_live/beta0_1.png"]
    assert config["info"] == view["info"] and config["start"] == 1
    assert '<img src="05%20beta_live/beta0_1.png"' in page  # without the script: the saved β, as a picture


def test_a_page_links_the_script_and_style_by_relative_paths(tmp_path):
    body = "<html><head><title>t</title></head><body><p>x</p></body></html>"
    page = site.live_page(body)
    assert page.count('<script src="live/vaelab-live.js"></script>') == 1
    assert page.index('href="live/vaelab-live.css"') < page.index("</head>") < page.index("vaelab-live.js")
    folder = site.copy_live_assets(tmp_path)
    assert {p.name for p in folder.iterdir()} == {"vaelab-live.js", "vaelab-live.css"}


def test_site_assets_are_package_data():
    import fnmatch
    import tomllib

    root = site.ASSETS.parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["coursekit"]
    files = [p.relative_to(site.ASSETS.parent).as_posix() for p in site.ASSETS.iterdir() if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), (files, patterns)


def test_exported_pages_load_nothing_from_the_network(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("1")])
    body, _ = site.html_exporter(tmp_path).from_notebook_node(nb)
    assert "require.min.js" not in body
    if site.mathjax_source() is not None:
        import re

        assert not re.findall(r"""<script[^>]+src=["']https?:""", body)


# --------------------------------------------------------------------------- build_course

def _notebook(path, *code):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {path.stem}\n\nA page.")]
                                  + [nbformat.v4.new_code_cell(c) for c in code])
    nbformat.write(nb, path)


@pytest.mark.slow
def test_build_course_replaces_only_what_it_owns(tmp_path, capsys):
    from coursekit import course

    notebooks, out = tmp_path / "notebooks", tmp_path / "build"
    notebooks.mkdir()
    for keep in ("student/01_kl.ipynb", "slides/01_kl.slides.html", "notes.txt"):
        (out / keep).parent.mkdir(parents=True, exist_ok=True)
        (out / keep).write_text("made by make student / make slides / a person")
    (out / "00_old_unit.html").write_text("a page of a unit that is gone")  # written before .course-files existed
    _notebook(notebooks / "01_kl.ipynb", "1 / 0")
    with pytest.raises(Exception, match="ZeroDivisionError"):
        course.build_course(notebooks, out, timeout=120)
    assert (out / "00_old_unit.html").is_file() and not (out / "index.html").exists()  # a failure changes nothing

    _notebook(notebooks / "01_kl.ipynb", "from vaeutils.widgets import kl_explorer\nkl_explorer()")
    pages = course.build_course(notebooks, out, timeout=300)
    assert pages == [out / "01_kl.html", out / "index.html"]
    assert "live: kl-explorer" in capsys.readouterr().out
    for keep in ("student/01_kl.ipynb", "slides/01_kl.slides.html", "notes.txt"):
        assert (out / keep).read_text().startswith("made by"), keep
    assert not (out / "00_old_unit.html").exists()
    page = (out / "01_kl.html").read_text()
    assert 'data-kind="kl-explorer"' in page and '<script src="live/vaelab-live.js">' in page
    assert (out / "live" / "vaelab-live.js").is_file()
    owned = set((out / course.OWNED).read_text().split())
    assert {"01_kl.html", "index.html", "live"} <= owned and not owned & {"student", "slides", "notes.txt"}
    assert not list(tmp_path.glob(".build-*"))  # no staging or old copies left behind
