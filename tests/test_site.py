"""The static course site: widgets become snapshots a page can show without a kernel or a network."""

from __future__ import annotations

import io

import ipywidgets as widgets
import nbformat
import pytest
from PIL import Image

from vaeutils import site


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
