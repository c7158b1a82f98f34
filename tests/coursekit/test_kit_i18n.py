"""The Chinese edition's machinery (coursekit.i18n): catalogs updated from the English (fuzzy, obsolete, new),
notebooks built from them (deterministic, code identical but for the setup cell), the check CI runs, and the
glossary. Everything runs on small units in tmp_path, except the checks of the real catalogs' translated entries
and of the real units' setup cells."""

import shutil

import nbformat
import polib
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import i18n
from coursekit.__main__ import COMMANDS
from coursekit.i18n import Edition, I18nError

GLOSSARY = Edition().glossary

TITLE = "# 00 · A small unit\n\nThis unit trains an encoder and a decoder."
SECTION = ("## 1. The KL divergence\n\nThe KL divergence of `q` from the prior is $\\tfrac12(\\mu^2 + \\sigma^2 - 1)$; "
           "see [S2](sources.md#s2).")
WHY = ("**Why?** (written answer)\n\n### BEGIN SOLUTION\nBecause the posterior is pulled towards the prior.\n"
       "### END SOLUTION")
ZH = {
    "c-title": "# 00 · 一个小单元\n\n本单元训练一个编码器和一个解码器。",
    "c-section": ("## 1. KL 散度\n\n`q` 相对先验的 KL 散度为 $\\tfrac12(\\mu^2 + \\sigma^2 - 1)$；"
                  "见 [S2](sources.md#s2)。"),
    "c-why": "**为什么？**（书面回答）\n\n### BEGIN SOLUTION\n因为后验被拉向先验。\n### END SOLUTION",
}
SOURCES = '# The source articles\n\n<a id="s2"></a>\n## S2 — The loss\n\n* **About:** the two terms.\n* *A claim.*\n'
SOURCES_ZH = {
    "# The source articles": "# 原始文章",
    '<a id="s2"></a>\n## S2 — The loss': '<a id="s2"></a>\n## S2 — 损失',
    "* **About:** the two terms.": "* **内容：** 两个损失项。",
    "* *A claim.*": "* *一个论断。*",
}


def small_unit() -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    setup = new_code_cell("%matplotlib inline\nfrom vaeutils import config\n\ndevice = config.setup(seed=0)",
                          id="c-setup")
    setup.outputs = [new_output("stream", name="stdout", text="vaeutils: mode full\n")]
    setup.execution_count = 1
    nb.cells = [
        new_markdown_cell(TITLE, id="c-title", metadata={"slideshow": {"slide_type": "slide"}}),
        setup,
        new_markdown_cell(SECTION, id="c-section"),
        new_code_cell("x = 1  # a comment\nprint(f'{x:.3f}')", id="c-code"),
        new_markdown_cell("", id="c-empty"),
        new_markdown_cell(WHY, id="c-why", metadata={"nbgrader": {"grade": True, "solution": True}}),
    ]
    return nb


@pytest.fixture
def edition(tmp_path) -> Edition:
    """A course of one small unit and a sources page, with the real glossary."""
    (tmp_path / "notebooks").mkdir()
    nbformat.write(small_unit(), tmp_path / "notebooks" / "00_small.ipynb")
    (tmp_path / "notebooks" / "sources.md").write_text(SOURCES, encoding="utf-8")
    (tmp_path / "i18n" / "zh").mkdir(parents=True)
    shutil.copy(GLOSSARY, tmp_path / "i18n" / "zh" / "glossary.tsv")
    return Edition(root=tmp_path)


def translate(path, mapping, by="msgctxt"):
    po = polib.pofile(str(path))
    for e in po:
        key = getattr(e, by)
        if key in mapping and not e.obsolete:
            e.msgstr = mapping[key]
            if e.fuzzy:
                e.flags.remove("fuzzy")
                e.previous_msgid = None
    po.save()


def translated(edition: Edition) -> Edition:
    i18n.update(edition, echo=lambda s: None)
    translate(edition.catalog(edition.english / "00_small.ipynb"), ZH)
    translate(edition.sources_po, SOURCES_ZH, by="msgid")
    return edition


def entries(path) -> dict:
    return {i18n.entry_key(e): e for e in polib.pofile(str(path))}


def edit_english(edition, cell_id, new_source=None, remove=False):
    path = edition.english / "00_small.ipynb"
    nb = nbformat.read(path, as_version=4)
    if remove:
        nb.cells = [c for c in nb.cells if c.id != cell_id]
    else:
        next(c for c in nb.cells if c.id == cell_id).source = new_source
    nbformat.write(nb, path)


# ----------------------------------------------------------------------------------------------------------------
# update


def test_update_creates_one_untranslated_entry_per_markdown_cell(edition):
    i18n.update(edition, echo=lambda s: None)
    po = polib.pofile(str(edition.catalog(edition.english / "00_small.ipynb")))
    assert [(e.msgctxt, e.msgid, e.msgstr) for e in po] == [
        ("c-title", TITLE, ""), ("c-section", SECTION, ""), ("c-why", WHY, "")]  # the empty cell has none
    assert po.metadata["Language"] == "zh_CN" and "charset=UTF-8" in po.metadata["Content-Type"]
    assert po[0].occurrences == [("notebooks/00_small.ipynb", "")]
    sources = polib.pofile(str(edition.sources_po))
    assert [e.msgid for e in sources] == list(SOURCES_ZH)  # by paragraph and list item; the anchor stays with
    # its heading, and a paragraph without words gets no entry


def test_update_marks_changed_fuzzy_removed_obsolete_and_adds_new(edition):
    catalog = edition.catalog(edition.english / "00_small.ipynb")
    translated(edition)
    edit_english(edition, "c-section", SECTION.replace("prior", "standard normal prior"))
    edit_english(edition, "c-why", remove=True)
    path = edition.english / "00_small.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_markdown_cell("## Summary\n\nA new cell.", id="c-new"))
    next(c for c in nb.cells if c.id == "c-title").id = "c-title-2"  # a new id, the same text
    nbformat.write(nb, path)
    lines = []
    i18n.update(edition, echo=lines.append)
    got = entries(catalog)
    section = got["\x04c-section"]
    assert section.fuzzy and section.msgstr == ZH["c-section"] and section.previous_msgid == SECTION
    assert "standard normal prior" in section.msgid
    assert got["\x04c-why"].obsolete and got["\x04c-why"].msgstr == ZH["c-why"]
    assert got["\x04c-new"].msgstr == "" and not got["\x04c-new"].fuzzy
    assert got["\x04c-title-2"].msgstr == ZH["c-title"] and not got["\x04c-title-2"].fuzzy
    assert "1 new, 1 newly fuzzy, 1 newly obsolete, 1 moved" in lines[0]  # the old title was taken over
    assert "\x04c-title" not in got
    text = catalog.read_text(encoding="utf-8")
    assert "#, fuzzy" in text and "#| msgid" in text and "#~ msgctxt \"c-why\"" in text
    # a second update changes nothing; a second English edit keeps the English the translation was made for
    i18n.update(edition, echo=lambda s: None)
    assert catalog.read_text(encoding="utf-8") == text
    edit_english(edition, "c-section", SECTION.replace("prior", "N(0, I)"))
    i18n.update(edition, echo=lambda s: None)
    assert entries(catalog)["\x04c-section"].previous_msgid == SECTION
    # the removed cell back: its translation comes back with it
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_markdown_cell(WHY, id="c-why"))
    nbformat.write(nb, path)
    i18n.update(edition, echo=lambda s: None)
    why = entries(catalog)["\x04c-why"]
    assert not why.obsolete and not why.fuzzy and why.msgstr == ZH["c-why"]


def test_an_edited_paragraph_of_the_sources_page_keeps_its_translation_as_fuzzy(edition):
    translated(edition)
    page = SOURCES.replace("the two terms.", "the two terms of the loss.")
    (edition.english / "sources.md").write_text(page, encoding="utf-8")
    lines = []
    i18n.update(edition, echo=lines.append)
    got = entries(edition.sources_po)
    new = got["* **About:** the two terms of the loss."]
    assert new.fuzzy and new.msgstr == "* **内容：** 两个损失项。"
    assert new.previous_msgid == "* **About:** the two terms."
    assert "* **About:** the two terms." not in got  # taken over, not kept as obsolete too
    assert "1 newly fuzzy" in [line for line in lines if "sources.po" in line][0]
    # an unrelated new paragraph stays untranslated
    (edition.english / "sources.md").write_text(page + "\nSomething else entirely, with other words.\n",
                                                encoding="utf-8")
    i18n.update(edition, echo=lambda s: None)
    assert entries(edition.sources_po)["Something else entirely, with other words."].msgstr == ""


def test_update_of_an_untranslated_entry_is_not_fuzzy(edition):
    i18n.update(edition, echo=lambda s: None)
    edit_english(edition, "c-section", SECTION + " More.")
    i18n.update(edition, echo=lambda s: None)
    got = entries(edition.catalog(edition.english / "00_small.ipynb"))["\x04c-section"]
    assert not got.fuzzy and got.msgstr == "" and got.msgid.endswith("More.")


# ----------------------------------------------------------------------------------------------------------------
# build


def test_build_is_deterministic_and_keeps_the_code(edition):
    translated(edition)
    assert i18n.build(edition, echo=lambda s: None) == []
    out = edition.out / "00_small.ipynb"
    first = out.read_bytes()
    built, problems = i18n.build_all(edition)
    assert problems == [] and built[0].text.encode() == first  # twice: the same bytes
    assert i18n.build(edition, echo=lambda s: None) == [] and out.read_bytes() == first
    english, zh = nbformat.read(edition.english / "00_small.ipynb", 4), nbformat.read(out, 4)
    nbformat.validate(zh)
    assert [c.id for c in zh.cells] == [c.id for c in english.cells]
    assert [c.metadata for c in zh.cells] == [c.metadata for c in english.cells]
    for en_cell, zh_cell in zip(english.cells, zh.cells):
        if en_cell.cell_type == "code":
            assert zh_cell.outputs == [] and zh_cell.execution_count is None
            if en_cell.id == "c-setup":
                assert zh_cell.source == en_cell.source.replace("setup(seed=0)", 'setup(seed=0, lang="zh")')
            else:
                assert zh_cell.source == en_cell.source
        elif en_cell.source.strip():
            assert zh_cell.source == ZH[en_cell.id]
        else:
            assert zh_cell.source == en_cell.source
    assert zh.metadata.vaelab == {"lang": "zh", "english": "../00_small.ipynb"}
    # the sources page beside the units, so sources.md#s2 leads to the Chinese page
    page = (edition.out / "sources.md").read_text(encoding="utf-8")
    assert page == '# 原始文章\n\n<a id="s2"></a>\n## S2 — 损失\n\n* **内容：** 两个损失项。\n* *一个论断。*\n'
    assert "(sources.md#s2)" in zh.cells[2].source


def test_build_stops_on_gaps_with_a_list_and_drafts_with_allow_missing(edition, capsys):
    i18n.update(edition, echo=lambda s: None)
    translate(edition.catalog(edition.english / "00_small.ipynb"), {"c-title": ZH["c-title"]})
    assert i18n.main(["--root", str(edition.root), "build"]) == 1
    err = capsys.readouterr().err
    assert "untranslated: c-section, c-why" in err and "nothing written" in err
    assert not edition.out.exists()
    lines = []
    assert i18n.build(edition, allow_missing=True, echo=lines.append) == []
    assert any("00_small.ipynb: DRAFT, 2 of 3 texts left in English" in line for line in lines)
    zh = nbformat.read(edition.out / "00_small.ipynb", 4)
    assert zh.cells[0].source == ZH["c-title"] and zh.cells[2].source == SECTION


def test_build_refuses_an_inconsistent_translation(edition):
    translated(edition)
    translate(edition.catalog(edition.english / "00_small.ipynb"),
              {"c-section": "## 1. KL 散度\n\nq 相对先验的 KL 散度为 ½(μ² + σ² − 1)。"})
    problems = i18n.build(edition, allow_missing=True, echo=lambda s: None)
    assert [p.kind for p in problems] == ["inconsistent"]
    text = str(problems[0])
    assert "c-section" in text and "code spans" in text and "formulas" in text and "link targets" in text


@pytest.mark.parametrize("english, chinese, what", [
    ("## 2. Title\n\ntext", "## 3. 标题\n\n文字", "headings"),
    ("## Title\n\ntext", "### 标题\n\n文字", "headings"),
    ("- one\n- two", "- 一、二", "list items"),
    ("| a | b |\n| --- | --- |\n| 1 | 2 |", "| 甲 | 乙 |\n| 1 | 2 |", "table rows"),
    ("### BEGIN SOLUTION\nx\n### END SOLUTION", "### BEGIN SOLUTION\n答案", "nbgrader"),
    ('<a id="s1"></a>\n## S1', '<a id="s2"></a>\n## S1', "HTML ids"),
])
def test_consistency_catches_structure_changes(english, chinese, what):
    assert any(what in p for p in i18n.consistency(english, chinese))


def test_consistency_allows_reordering_and_repeats():
    english = "Use `config.setup` and $\\beta$; then `config.setup` again, see [S1](sources.md#s1)."
    assert i18n.consistency(english, "先看 [S1](sources.md#s1)，再用 $\\beta$ 调用 `config.setup`。") == []
    assert i18n.consistency("rate {rate:.2f} nats", "率 {rate:.2f} 奈特", fields=True) == []
    assert i18n.consistency("rate {rate:.2f} nats", "率 {rate} 奈特", fields=True)


def test_links_to_pages_that_are_not_translated_go_up_one_folder():
    text = "[S2](sources.md#s2), [unit 05](05_beta_vae.ipynb#3), ![fig](figures/a.svg), [x](https://a.b/c), `[y](z.md)`"
    out = i18n.relink(text, {"sources.md", "05_beta_vae.ipynb"})
    assert out == ("[S2](sources.md#s2), [unit 05](05_beta_vae.ipynb#3), ![fig](../figures/a.svg), "
                   "[x](https://a.b/c), `[y](z.md)`")


# ----------------------------------------------------------------------------------------------------------------
# the setup cell


@pytest.mark.parametrize("source, expected", [
    ("device = config.setup(seed=0)", 'device = config.setup(seed=0, lang="zh")'),
    ("%matplotlib inline\nimport torch\n\ndevice = config.setup()", '%matplotlib inline\nimport torch\n\n'
                                                                    'device = config.setup(lang="zh")'),
    ("config.setup(0)  # seed 0", 'config.setup(0, lang="zh")  # seed 0'),
    ("device = config.setup(\n    seed=0,\n)", 'device = config.setup(\n    seed=0, lang="zh",\n)'),
    ("d = vaeutils.config.setup(seed=3)", 'd = vaeutils.config.setup(seed=3, lang="zh")'),
    ("from vaeutils.config import setup\n\nd = setup(seed=0)", 'from vaeutils.config import setup\n\n'
                                                               'd = setup(seed=0, lang="zh")'),
    ("# «β» note\nd = config.setup(seed=len('β'))", "# «β» note\nd = config.setup(seed=len('β'), lang=\"zh\")"),
])
def test_the_setup_call_gets_the_language(source, expected):
    assert i18n.localize_setup(source, "zh") == expected


@pytest.mark.parametrize("source, message", [
    ("x = 1\nprint(x)", "no top-level config.setup"),
    ("def f():\n    return config.setup(seed=0)", "no top-level config.setup"),
    ("setup(seed=0)", "no top-level config.setup"),  # some other setup
    ('config.setup(seed=0, lang="en")', "already passes lang="),
    ("config.setup(**kwargs)", "pass seed= explicitly"),
])
def test_a_cell_without_a_setup_call_is_refused(source, message):
    with pytest.raises(I18nError, match=message):
        i18n.localize_setup(source, "zh")


def test_a_unit_without_a_setup_cell_fails_clearly(edition):
    path = edition.english / "00_small.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if c.id != "c-setup"]
    nbformat.write(nb, path)
    translated(edition)
    problems = i18n.build(edition, echo=lambda s: None)
    assert len(problems) == 1 and "no code cell calls config.setup(...)" in str(problems[0])
    assert "notebooks/00_small.ipynb" in str(problems[0])


def test_every_real_notebook_has_a_setup_cell_the_build_can_localize():
    edition = Edition()
    notebooks = edition.notebooks()
    assert len(notebooks) >= 11  # ten units and the app
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        cell = nb.cells[i18n.setup_cell_index(nb, path.name)]
        new = i18n.localize_setup(cell.source, "zh", path.name)
        assert new.count('lang="zh"') == 1 and new.replace(', lang="zh"', "") == cell.source, path.name


# ----------------------------------------------------------------------------------------------------------------
# check: what CI runs


def test_check_passes_when_current_and_lists_what_is_not(edition, capsys):
    translated(edition)
    problems = i18n.check(edition)
    assert {p.kind for p in problems} == {"differs"}  # translated, but notebooks/zh/ not built yet
    i18n.build(edition, echo=lambda s: None)
    assert i18n.check(edition) == []
    assert i18n.main(["--root", str(edition.root), "check"]) == 0
    # a fuzzy entry, an untranslated one, a hand edit of a built file, a stale built file
    po = polib.pofile(str(edition.catalog(edition.english / "00_small.ipynb")))
    po[0].flags.append("fuzzy")
    po[1].msgstr = ""
    po.save()
    (edition.out / "sources.md").write_text("edited by hand\n", encoding="utf-8")
    (edition.out / "07_gone.ipynb").write_text("{}", encoding="utf-8")
    capsys.readouterr()
    assert i18n.main(["--root", str(edition.root), "check"]) == 1
    out = capsys.readouterr().out
    assert "00_small.po: fuzzy c-title" in out and "00_small.po: untranslated c-section" in out
    assert "notebooks/zh/sources.md: differs" in out and "notebooks/zh/07_gone.ipynb: stale" in out
    assert "the Chinese edition is not current" in out


def test_check_covers_the_package_catalog(edition, capsys):
    package = edition.root / "vaeutils"
    package.mkdir()
    (package / "plots.py").write_text('from .i18n import _, _fig\n\nTITLE = _fig("rate {rate:.1f} nats")\n'
                                      'print(_("epoch {n}").format(n=3))\n', encoding="utf-8")
    translated(edition)
    i18n.build(edition, echo=lambda s: None)
    kinds = {(p.kind, p.key) for p in i18n.check(edition)}
    assert kinds == {("untranslated", "'rate {rate:.1f} nats'"), ("untranslated", "'epoch {n}'")}
    po = polib.pofile(str(edition.package_po))
    assert po[0].occurrences == [("vaeutils/plots.py", "")] and "python-brace-format" in po[0].flags
    translate(edition.package_po, {"rate {rate:.1f} nats": "率 {rate:.1f} 奈特", "epoch {n}": "第 {k} 轮"},
              by="msgid")
    problems = i18n.check(edition)
    assert [(p.kind, p.key) for p in problems] == [("inconsistent", "'epoch {n}'")]
    assert "format fields" in problems[0].detail


def test_a_computed_message_cannot_be_extracted(tmp_path):
    (tmp_path / "vaeutils").mkdir()
    (tmp_path / "vaeutils" / "m.py").write_text('x = 2\ny = _(f"β = {x}")\nz = N_("ok")\n', encoding="utf-8")
    items, problems = i18n.message_items(Edition(root=tmp_path))
    assert [i.msgid for i in items] == ["ok"]
    assert problems and "vaeutils/m.py:2" in problems[0] and "literal string" in problems[0]


def test_the_messages_a_unit_hands_to_vaeutils_go_in_its_catalog(edition, capsys):
    """Exercise feedback and table headers are written in the units' code, which both editions share: the
    literal hints, misconception keys and header cells go into vaeutils' catalog, which vaeutils reads when it
    shows them. Argument checks' hints (errors) stay English."""
    path = edition.english / "00_small.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_code_cell(
        'lesson.check_close("d", d, ref, hint="Sum over pixels.",\n'
        '                   misconceptions={"You averaged over pixels.": ref / 784, f"Off by {k}.": 0})\n'
        'lesson.table(["β", "rate R (nats)", f"{n} units", f"{x:.{d}f} nats", *cols], rows)\n'
        'checks.number("lam", lam, hint="nats per dimension")\n'
        'ax.set_title(_fig("The rate–distortion plane"))\n'
        'print(f"rate {rate:.2f} nats;", r, "done")\n'
        'ax.set(xlabel="rate (nats)", title=f"β = {b:g}")', id="c-check"))
    nbformat.write(nb, path)
    (edition.root / "vaeutils").mkdir()
    items, problems = i18n.message_items(edition)
    # an f-string is a template (vaeutils.i18n.tr matches what it printed); "β" and "β = {b:g}" have
    # nothing to translate; print's and matplotlib's texts are taken too
    assert [i.msgid for i in items] == ["Sum over pixels.", "You averaged over pixels.", "Off by {k}.",
                                        "rate R (nats)", "{n} units", "The rate–distortion plane",
                                        "rate {rate:.2f} nats;", "done", "rate (nats)"]
    assert all(i.occurrences == (("notebooks/00_small.ipynb", ""),) for i in items)
    assert len(problems) == 1 and all("c-check" in p and "f-string" in p for p in problems)
    i18n.update(edition, echo=print)
    assert "1 message(s) a student would see in English" in capsys.readouterr().out
    assert [e.msgid for e in polib.pofile(str(edition.package_po))] == [i.msgid for i in items]
    assert {p.kind for p in i18n.check(edition)} >= {"untranslatable"}


def test_an_english_edit_without_its_translation_fails_ci(tmp_path, capsys):
    """On a copy of unit 00 (its opening, up to section 1) and its catalog: current, then the English of one
    markdown cell changes and the check fails; after `update` it still fails (fuzzy) until the translation is
    revised."""
    real = Edition()
    name = "00_setup_and_data.ipynb"
    nb = nbformat.read(real.english / name, as_version=4)
    ids = [c.id for c in nb.cells]
    nb.cells = nb.cells[: ids.index("u00-03") + 1]
    edition = Edition(root=tmp_path)
    edition.english.mkdir(parents=True)
    nbformat.write(nb, edition.english / name)
    edition.catalog(edition.english / name).parent.mkdir(parents=True)
    shutil.copy(real.catalog(real.english / name), edition.catalog(edition.english / name))
    shutil.copy(real.glossary, edition.glossary)
    i18n.update(edition, echo=lambda s: None)
    assert i18n.build(edition, echo=lambda s: None) == [], "the opening of unit 00 is translated"
    assert i18n.main(["--root", str(tmp_path), "check"]) == 0
    built = (edition.out / name).read_bytes()

    cell = next(c for c in nb.cells if c.id == "u00-03")
    cell.source = cell.source.replace("then the CPU", "then the CPU (slowest)")
    assert "(slowest)" in cell.source
    nbformat.write(nb, edition.english / name)
    capsys.readouterr()
    assert i18n.main(["--root", str(tmp_path), "check"]) == 1
    assert "changed u00-03" in capsys.readouterr().out
    i18n.update(edition, echo=lambda s: None)
    assert i18n.main(["--root", str(tmp_path), "check"]) == 1
    assert "fuzzy u00-03" in capsys.readouterr().out
    assert (edition.out / name).read_bytes() == built  # nothing rebuilt behind the check's back
    # the translator revises the entry: current again
    po = polib.pofile(str(edition.catalog(edition.english / name)))
    entry = next(e for e in po if e.msgctxt == "u00-03")
    entry.msgstr = entry.msgstr.replace("最后是 CPU", "最后是（最慢的）CPU")
    entry.flags.remove("fuzzy")
    entry.previous_msgid = None
    po.save()
    assert i18n.build(edition, echo=lambda s: None) == []
    assert i18n.main(["--root", str(tmp_path), "check"]) == 0


def test_the_command_is_registered():
    assert COMMANDS["zh"][0] == "i18n"


# ----------------------------------------------------------------------------------------------------------------
# paragraphs of a page


def test_paragraphs_rebuild_the_page_exactly():
    text = ("# T\n\nA para\nwith two lines.\n\n\n* item one\n  continued\n* item two\n\n---\n\n"
            '<a id="s1"></a>\n\n```python\nx = 1\n\ny = 2\n```\n\n| a | b |\n| - | - |\n')
    pieces = i18n.paragraphs(text)
    assert "".join(p for p, _ in pieces) == text
    assert [p for p, t in pieces if t] == ["# T", "A para\nwith two lines.", "* item one\n  continued",
                                           "* item two", "```python\nx = 1\n\ny = 2\n```", "| a | b |\n| - | - |"]
    page = (Edition().sources).read_text(encoding="utf-8")
    assert "".join(p for p, _ in i18n.paragraphs(page)) == page


# ----------------------------------------------------------------------------------------------------------------
# the glossary


def test_the_glossary_fixes_the_course_terms():
    terms = {t.english: t for t in i18n.read_glossary(GLOSSARY)}
    fixed = {
        "variational autoencoder": "变分自编码器", "encoder": "编码器", "decoder": "解码器", "prior": "先验",
        "posterior": "后验", "evidence lower bound": "证据下界", "KL divergence": "KL 散度",
        "reconstruction loss": "重构损失", "reparameterization": "重参数化", "posterior collapse": "后验坍塌",
        "free bits": "自由比特", "rate–distortion": "率失真", "disentanglement": "解耦", "total correlation": "总相关",
        "mutual information": "互信息", "likelihood": "似然", "log-likelihood": "对数似然", "latent variable": "潜变量",
        "bits per dimension": "每维比特", "importance weighting": "重要性加权", "active unit": "活跃单元",
        "aggregate posterior": "聚合后验", "capacity": "容量", "warm-up": "预热", "annealing": "退火",
        "calibrated decoder": "校准解码器", "learned prior": "学习先验", "mode collapse": "模式坍塌",
        "discriminator": "判别器", "generator": "生成器", "energy-based model": "基于能量的模型",
    }
    for english, chinese in fixed.items():
        assert terms[english].chinese[0] == chinese, english
    assert "生成网络" in terms["encoder"].refuse and "推断网络" in terms["decoder"].refuse


@pytest.fixture(scope="module")
def terms():
    return i18n.read_glossary(GLOSSARY)


@pytest.mark.parametrize("english, chinese", [
    ("The Encoders map x to z.", "编码器把 x 映射到 z。"),
    ("A reparameterised sample; the reparameterization trick.", "重参数化的样本；重参数化技巧。"),
    ("KL warmup, then KL annealing; the posterior collapsed.", "先做 KL 预热，再做 KL 退火；后验坍塌了。"),
    ("Rate–distortion and rate-distortion and rate distortion.", "率失真。"),
    ("Log-likelihoods and likelihood", "对数似然"),
    ("Only code: `encoder(x)` and $\\mathrm{KL}(q\\|p)$ and [link](prior.md).", "只有代码：`encoder(x)`。"),
    ("The decoder, the generative network, and the encoder.", "解码器，即生成网络；以及编码器。"),
    ("Prior to training, we fix the seed.", "训练之前先固定随机种子。"),
    ("The article's claim about the KL divergence.", "《变分自动编码器的损失》一文关于 KL 散度的说法。"),
])
def test_glossary_matching_accepts(terms, english, chinese):
    assert i18n.glossary_problems(english, chinese, terms) == []


@pytest.mark.parametrize("english, chinese, expected", [
    ("The encoder gives q(z|x).", "生成网络给出 q(z|x)。", "'encoder' should be 编码器"),
    ("The encoder gives q(z|x).", "编码器（生成网络）给出 q(z|x)。", "生成网络 is refused for 'encoder'"),
    ("The decoders are Bernoulli.", "推断网络是伯努利的。", "推断网络 is refused for 'decoder'"),
    ("Posterior collapse.", "模式坍塌（后验坍塌）。", "模式坍塌 is refused for 'posterior collapse'"),
    ("A VAE.", "一个变分自动编码器。", "变分自动编码器 is refused anywhere"),
    ("Disentangled codes.", "解纠缠的编码。", "'disentangle' should be 解耦"),
    ("KL-divergences", "KL 距离", "'KL divergence' should be KL 散度"),
    ("The learned priors", "学到的先验", "'learned prior' should be 学习先验"),
])
def test_glossary_matching_refuses(terms, english, chinese, expected):
    assert any(expected in p for p in i18n.glossary_problems(english, chinese, terms)), \
        i18n.glossary_problems(english, chinese, terms)


def test_translated_entries_follow_the_glossary():
    """Every translated entry of the real catalogs (units, app, sources page, vaeutils) uses the glossary's
    terms and none of its refused renderings, and keeps the code, formulas, links and structure of its English."""
    edition = Edition()
    catalogs = sorted((edition.catalogs / "notebooks").glob("*.po")) + [edition.sources_po, edition.package_po]
    catalogs = [c for c in catalogs if c.is_file()]
    assert catalogs
    assert i18n.glossary_check(edition, catalogs) == []
    for path in catalogs:
        fields = path == edition.package_po
        for e in polib.pofile(str(path)):
            if e.msgstr and not e.fuzzy and not e.obsolete:
                assert i18n.consistency(e.msgid, e.msgstr, fields=fields) == [], (path.name, e.msgctxt)


def test_catalogs_are_well_formed():
    """Each real catalog parses, has the header the tools need, and keys its entries by cell id (units)."""
    edition = Edition()
    for path in sorted((edition.catalogs / "notebooks").glob("*.po")):
        po = polib.pofile(str(path))
        assert po.metadata["Language"] == "zh_CN", path.name
        assert all(e.msgctxt for e in po), path.name
