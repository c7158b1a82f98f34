"""The course site: widgets become snapshots or live views a page shows without a kernel or a
network, and the book around them (coursekit.course) is staged, checked and installed without
touching what others built."""

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


def test_the_live_views_script_and_style_go_where_the_book_links_them(tmp_path):
    folder = site.copy_live_assets(tmp_path / "_static")
    assert folder == tmp_path / "_static"
    assert {p.name for p in folder.iterdir()} == {"vaelab-live.js", "vaelab-live.css"}


def test_site_assets_are_package_data():
    import fnmatch
    import tomllib

    root = site.ASSETS.parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["coursekit"]
    from coursekit import course

    files = [p.relative_to(site.ASSETS.parent).as_posix() for folder in (site.ASSETS, course.BOOK, course.BOOK / "zh")
             for p in folder.iterdir() if p.is_file()]
    assert {f.split("/")[0] for f in files} == {"book", "site_assets"}
    assert all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), (files, patterns)


def test_exported_pages_load_nothing_from_the_network(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("1")])
    body, _ = site.html_exporter(tmp_path).from_notebook_node(nb)
    assert "require.min.js" not in body
    if site.mathjax_source() is not None:
        import re

        assert not re.findall(r"""<script[^>]+src=["']https?:""", body)


# ------------------------------------------------------------------- the book (coursekit.course)

STANDIN = """{title}

A stand-in for the unit, with maths inline, $\\beta\\,\\mathrm{{KL}}(q\\,\\|\\,p)$, and a source,
[S2](sources.md#s2).

## A section

$$\\mathcal L = -\\log p(x\\mid z) + \\beta\\,\\mathrm{{KL}}\\big(q(z\\mid x)\\,\\|\\,p(z)\\big)$$
"""


def standin_course(folder) -> tuple:
    """``(notebooks, executed)`` under ``folder``: every page of the course under its real name,
    each a small executed stand-in with the unit's real title, maths and a link to the sources page
    (the real one)."""
    import shutil

    from coursekit import paths
    from coursekit.executed import course_notebooks
    from coursekit.notebooks import read

    notebooks, executed = folder / "notebooks", folder / "executed"
    for d in (notebooks, executed):
        d.mkdir(parents=True, exist_ok=True)
    for path in course_notebooks(paths.NOTEBOOKS):
        title = read(path).cells[0].source.splitlines()[0]
        text = STANDIN.format(title=title)
        if path.name.startswith("07"):
            text += "\n## Free bits\n\nFree bits keep a floor under the KL of each latent.\n"
        cell = nbformat.v4.new_code_cell("print(1 + 1)", execution_count=1)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text), cell], metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}})
        for d in (notebooks, executed):
            nbformat.write(nb, d / path.name)
    shutil.copyfile(paths.NOTEBOOKS / "sources.md", notebooks / "sources.md")
    return notebooks, executed


def test_every_page_of_the_course_is_in_the_table_of_contents_in_order():
    from coursekit import course, paths

    pages = course.page_sources()
    assert list(pages) == course.toc_pages()  # landing page, units, app, sources, guides
    units = [p.stem for p in paths.units()]
    assert len(units) == 10 and list(pages)[1:11] == units
    guides = [f"guides/instructor/{p.stem}" for p in (course.DOCS / "instructor").glob("*.md")]
    assert guides and set(guides) <= set(pages) and "guides/classroom" in pages


def test_a_unit_missing_from_the_table_of_contents_stops_the_build(tmp_path):
    from coursekit import course

    notebooks, executed = standin_course(tmp_path)
    extra = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 10 · More")])
    nbformat.write(extra, notebooks / "10_more.ipynb")
    with pytest.raises(course.BookError, match="10_more is in the course but not in"):
        course.stage(tmp_path / "staging", executed, notebooks)
    (notebooks / "10_more.ipynb").unlink()
    (executed / "05_beta_vae.ipynb").unlink()
    missing = "05_beta_vae.ipynb is missing .run `python -m coursekit execute`"
    with pytest.raises(course.BookError, match=missing):
        course.stage(tmp_path / "staging", executed, notebooks)
    assert not (tmp_path / "staging").exists()


def test_the_landing_page_introduces_every_unit_in_its_own_words():
    import re

    from coursekit import course, paths
    from coursekit.executed import course_notebooks
    from coursekit.notebooks import read

    text = (course.BOOK / "index.md").read_text(encoding="utf-8")
    assert "## How to start" in text and "make lab" in text
    for path in course_notebooks(paths.NOTEBOOKS):
        row = next((line for line in text.splitlines() if f"]({path.name})" in line), None)
        assert row is not None, f"the landing page does not link {path.name}"
        summary = row.split("|")[2].strip()
        assert 40 <= len(summary) <= 140 and summary.endswith("."), summary
        prose = " ".join(c.source for c in read(path).cells if c.cell_type == "markdown")
        assert summary.rstrip(".") not in " ".join(prose.split()), f"{path.name}: cut from the unit"
        assert not re.search(r"\$|\\\\[a-z]", summary), summary  # plain words, no TeX to render


def test_the_book_runs_no_kernel_and_fetches_nothing():
    import re

    import yaml

    from coursekit import course

    raw = (course.BOOK / "_config.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(raw)
    assert config["execute"]["execute_notebooks"] == "off"
    sphinx = config["sphinx"]["config"]
    assert sphinx["nb_ipywidgets_js"] == {}  # myst-nb's widget scripts come from a CDN
    assert not {"sphinx_thebe", "sphinx.ext.intersphinx"} & set(sphinx["extensions"])
    assert "coursekit.course" in sphinx["extensions"]
    assert not re.search(r"https?:|//", sphinx["mathjax_path"])
    assert not re.search(r"https?://", raw)
    for flag in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
        assert config["html"][flag] is False
    assert config["launch_buttons"]["thebe"] is False
    launch = config["launch_buttons"]
    assert not any(launch[k] for k in ("binderhub_url", "jupyterhub_url", "colab_url"))


def test_check_site_finds_broken_links_missing_anchors_and_network_loads(tmp_path):
    from coursekit import course

    (tmp_path / "sub").mkdir()
    (tmp_path / "img.png").write_bytes(_png())
    (tmp_path / "a.html").write_text(
        '<h1 id="top">A</h1><a href="b.html#s1">ok</a> <a href="b.html#nope">no anchor</a> '
        '<a href="c.html">no page</a> <a href="#top">here</a> <a href="#gone">gone</a> '
        '<img src="img.png"> <img src="missing.png"> <a href="https://example.org/">a link out</a> '
        '<script src="https://cdn.example.org/x.js"></script> '
        '<link rel="stylesheet" href="//fonts.example/c.css"> '
        '<a href="mailto:x@example.org">mail</a> <img src="data:image/png;base64,AAAA">')
    (tmp_path / "b.html").write_text(
        '<a id="s1"></a><a href="sub/">a folder</a> <a href="b.html?q=1">query</a>')
    (tmp_path / "sub" / "index.html").write_text(
        '<a href="../a.html#top">up</a> <a href="../../out.html">out</a>')
    assert sorted(course.check_site(tmp_path)) == sorted([
        "a.html: b.html#nope has no anchor #nope",
        "a.html: c.html does not exist",
        "a.html: #gone has no anchor #gone",
        "a.html: missing.png does not exist",
        "a.html: loads https://cdn.example.org/x.js from another host",
        "a.html: loads //fonts.example/c.css from another host",
        "sub/index.html: ../../out.html leads out of the site",
    ])


def test_install_swaps_the_site_and_keeps_what_others_built(tmp_path):
    from coursekit import course

    build = tmp_path / "build"
    for keep in ("student/01.ipynb", "slides/01.html", "executed/01.ipynb", "site/index.html"):
        (build / keep).parent.mkdir(parents=True, exist_ok=True)
        (build / keep).write_text("before")
    new = tmp_path / "html"
    new.mkdir()
    (new / "index.html").write_text("new site")
    course.install(new, build / "site")
    assert (build / "site" / "index.html").read_text() == "new site" and not new.exists()
    # no leftovers
    assert sorted(p.name for p in build.iterdir()) == ["executed", "site", "slides", "student"]
    # what the hand-written builder left in build/ goes; what others own stays
    (build / "01_kl.html").write_text("old page")
    (build / "live").mkdir()
    (build / ".course-files").write_text("01_kl.html\nlive\nstudent\n../x\n.course-files\n")
    assert course.remove_old_site(build) == ["01_kl.html", "live", ".course-files"]
    assert sorted(p.name for p in build.iterdir()) == ["executed", "site", "slides", "student"]
    assert course.remove_old_site(build) == []


def test_a_failed_build_leaves_the_previous_site(tmp_path, monkeypatch):
    from coursekit import course

    notebooks, executed = standin_course(tmp_path)
    out = tmp_path / "build" / "site"
    out.mkdir(parents=True)
    (out / "index.html").write_text("the previous site")

    def failing(staging, work):
        raise course.BookError("Jupyter Book failed")

    monkeypatch.setattr(course, "build_html", failing)
    with pytest.raises(course.BookError):
        course.build_course(executed, out, notebooks, work=tmp_path / "work")
    assert (out / "index.html").read_text() == "the previous site"
    staged = tmp_path / "work" / "source"
    assert (staged / "_toc.yml").is_file()
    assert (staged / "guides" / "instructor" / "05_beta_vae.md").is_file()
    assert (staged / "_static" / "vaelab-live.js").is_file()
    assert (staged / "_extra" / "_static" / "mathjax" / "tex-chtml.js").is_file()

    def broken_links(staging, work):
        html = work / "_build" / "html"
        html.mkdir(parents=True)
        (html / "index.html").write_text('<a href="nowhere.html">x</a>')
        return html

    monkeypatch.setattr(course, "build_html", broken_links)
    with pytest.raises(course.BookError, match="index.html: nowhere.html does not exist"):
        course.build_course(executed, out, notebooks, work=tmp_path / "work")
    assert (out / "index.html").read_text() == "the previous site"


def test_make_course_runs_what_is_stale_then_builds_and_says_where(tmp_path, monkeypatch, capsys):
    from coursekit import course, executed

    calls = []
    monkeypatch.setattr(executed, "execute_course", lambda *a, **k: calls.append("execute"))

    def build(done, out, zh_executed=None):
        calls.append(("build", done, out, zh_executed))
        return out / "index.html"

    monkeypatch.setattr(course, "build_course", build)
    out = tmp_path / "site"
    assert course.main(["--out", str(out)]) == 0
    # the English units, then the Chinese edition's (notebooks/zh/), then one site of both
    assert calls == ["execute", "execute", ("build", course.EXECUTED, out, course.ZH_EXECUTED)]
    assert f"open {out / 'index.html'}" in capsys.readouterr().out

    def fail(done, out, zh_executed=None):
        raise course.BookError("3 problems in the built site")

    monkeypatch.setattr(course, "build_course", fail)
    assert course.main(["--out", str(out)]) == 1
    assert f"the site was not built; {out}/ is unchanged" in capsys.readouterr().err


def test_the_chinese_edition_is_a_book_of_its_own_units_with_a_switch_on_every_page():
    import yaml

    from coursekit import course, paths
    from coursekit.executed import course_notebooks

    zh = course.page_sources(course.ZH_EXECUTED, course.ZH_NOTEBOOKS, None, course.BOOK / "zh")
    assert list(zh) == course.toc_pages(course.BOOK / "zh" / "_toc.yml")  # no guides: English only
    names = [p.name for p in course_notebooks(paths.NOTEBOOKS)]
    assert [p.name for p in course_notebooks(course.ZH_NOTEBOOKS)] == names
    config = yaml.safe_load(course.BookEdition("zh", "English", "../", ("index", "05_beta_vae")).config())
    sphinx = config["sphinx"]["config"]
    assert sphinx["language"] == "zh_CN" and "中文" in config["title"]
    assert sphinx["vaelab_switch"] == {"label": "English", "root": "../", "pages": ["index", "05_beta_vae"]}
    assert "language" not in yaml.safe_load(course.BookEdition().config())["sphinx"]["config"]

    class App:
        class config:
            vaelab_switch = {"label": "中文", "root": "zh/", "pages": ["index", "05_beta_vae"]}

    def switch(pagename):
        context = {"body": "<h1>page</h1>"}
        course._language_switch(App, pagename, "page.html", context, None)
        return context["body"]

    assert 'href="zh/05_beta_vae.html"' in switch("05_beta_vae")
    assert 'href="../../zh/index.html"' in switch("guides/instructor/05_beta_vae")  # no Chinese guide
    assert switch("05_beta_vae").endswith("<h1>page</h1>")
    App.config.vaelab_switch = {"label": "English", "root": "../", "pages": ["index", "05_beta_vae"]}
    assert 'href="../05_beta_vae.html"' in switch("05_beta_vae") and 'lang="en"' in switch("05_beta_vae")
    context = {}  # a page without a body (the search page's template): untouched
    course._language_switch(App, "search", "search.html", context, None)
    assert context == {}
