"""vaeutils.i18n: the language chosen by config.setup(lang=...) or VAELAB_LANG, ``_()`` over the package catalog,
English figures without a CJK font, and Chinese figures without missing glyphs when the font is there."""

import logging
import os
import re
import warnings

import polib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vaeutils import config, i18n

FONT_MESSAGE = ("vaeutils: figures need a CJK font to show Chinese ({font}); install it with "
                "`{command}` and restart the kernel. Until then figures keep English labels.")


@pytest.fixture(autouse=True)
def fresh_language(monkeypatch):
    """Every test starts with no language chosen and no catalog read; English fonts afterwards."""
    monkeypatch.delenv(i18n.ENV, raising=False)
    monkeypatch.setattr(i18n, "_language", None)
    monkeypatch.setattr(i18n, "_font_ok", None)
    monkeypatch.setattr(i18n, "_tables", {})
    yield
    i18n._restore_fonts()
    i18n._unhook()


@pytest.fixture
def catalog_dir(tmp_path, monkeypatch):
    """A package catalog of three entries: translated, fuzzy, untranslated."""
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "zh_CN"}
    po.append(polib.POEntry(msgid="rate {rate:.2f} nats, β = {beta}", msgstr="率 {rate:.2f} 奈特，β = {beta}"))
    fuzzy = polib.POEntry(msgid="distortion", msgstr="旧的译文")
    fuzzy.flags.append("fuzzy")
    po.append(fuzzy)
    po.append(polib.POEntry(msgid="epoch", msgstr=""))
    folder = tmp_path / "zh" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po.save(str(folder / "vaeutils.po"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    return tmp_path


def test_english_by_default():
    assert i18n.get_language() == "en"
    assert i18n._("rate {rate:.2f} nats") == "rate {rate:.2f} nats"
    assert i18n._fig("KL per dimension") == "KL per dimension"


@pytest.mark.parametrize("tag", ["zh", "zh_CN", "zh-CN", "ZH-Hans", "zh_CN.UTF-8"])
def test_language_tags(tag):
    assert i18n.normalize(tag) == "zh"


@pytest.mark.parametrize("bad", ["fr", "chinese", ""])
def test_unknown_language_names_the_argument(bad):
    with pytest.raises(ValueError, match=r"lang=.*'en'.*'zh'"):
        i18n.normalize(bad)
    with pytest.raises(TypeError, match="lang"):
        i18n.normalize(3)


def test_environment_chooses(monkeypatch):
    monkeypatch.setenv(i18n.ENV, "zh_CN")
    assert i18n.get_language() == "zh"


def test_environment_typo_is_named(monkeypatch):
    monkeypatch.setenv(i18n.ENV, "cn")
    with pytest.raises(ValueError, match="VAELAB_LANG='cn'"):
        i18n.get_language()


def test_setup_passes_the_language(capsys):
    config.setup(seed=0, lang="zh")
    assert i18n.get_language() == "zh"
    config.setup(seed=0)  # no lang: the language stays
    assert i18n.get_language() == "zh"
    config.setup(seed=0, lang="en")
    assert i18n.get_language() == "en"
    with pytest.raises(ValueError, match="lang='klingon'"):
        config.setup(seed=0, lang="klingon")
    assert "mode" in capsys.readouterr().out  # the usual line, unchanged


def test_translated_fuzzy_and_untranslated(catalog_dir, monkeypatch):
    monkeypatch.setattr(i18n, "cjk_font_available", lambda: True)
    i18n.set_language("zh")
    message = i18n._("rate {rate:.2f} nats, β = {beta}")
    assert message.format(rate=3.14159, beta=4) == "率 3.14 奈特，β = 4"  # numbers as in English
    assert i18n._fig("rate {rate:.2f} nats, β = {beta}").startswith("率")  # the font is there
    assert i18n._("distortion") == "distortion"  # fuzzy: English until revised
    assert i18n._("epoch") == "epoch"  # untranslated
    assert i18n._("not in the catalog") == "not in the catalog"
    assert i18n.N_("distortion") == "distortion"
    i18n.set_language("en")
    assert i18n._("rate {rate:.2f} nats, β = {beta}") == "rate {rate:.2f} nats, β = {beta}"


def test_the_package_catalog_is_read():
    """The real catalog (vaeutils/locale/zh/LC_MESSAGES/vaeutils.po), read from the .po with no build step."""
    zh = i18n.catalog("zh").get(FONT_MESSAGE, FONT_MESSAGE)
    assert zh != FONT_MESSAGE and "{font}" in zh and "{command}" in zh
    assert "sudo apt-get install fonts-noto-cjk" in zh.format(font=i18n.CJK_FONT, command=i18n.INSTALL_FONT)


def test_without_a_cjk_font_figures_stay_english(catalog_dir, monkeypatch, capsys):
    monkeypatch.setattr(i18n, "cjk_font_available", lambda: False)
    i18n.set_language("zh")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "sudo apt-get install fonts-noto-cjk" in out
    assert i18n._fig("rate {rate:.2f} nats, β = {beta}") == "rate {rate:.2f} nats, β = {beta}"
    assert i18n._("rate {rate:.2f} nats, β = {beta}").startswith("率")  # printed text is still Chinese
    import matplotlib

    assert i18n.CJK_FONT not in matplotlib.rcParams["font.family"]


def _missing_glyphs(texts, caplog) -> list[str]:
    """Draw a figure with ``texts`` as title, labels, legend and tick labels; the missing-glyph reports."""
    caplog.clear()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="matplotlib"):
        warnings.simplefilter("always")
        fig = Figure(figsize=(4, 3))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        title, xlabel, ylabel, legend, tick = texts
        ax.plot([0, 1, 2], [3.0, 1.5, -0.5], label=legend)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xticks([0, 1, 2], [tick, "β = 4", "−1.5"])
        ax.legend()
        fig.canvas.draw()
    reports = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    return [r for r in reports if "missing from font" in r or "does not have a glyph" in r]


def test_chinese_figure_has_no_missing_glyph(caplog):
    if not i18n.cjk_font_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must have {i18n.CJK_FONT}: .ci/run installs Debian's fonts-noto-cjk")
        pytest.skip(f"{i18n.CJK_FONT} is not installed here ({i18n.INSTALL_FONT})")
    # the check itself: English fonts report the Chinese characters as missing
    assert _missing_glyphs(["率失真平面", "率", "失真", "解码器", "自由比特"], caplog)
    i18n.set_language("zh")
    texts = ["率失真平面：β = 4 时的模型", "率 R（奈特）", "失真 D = −log p(x|z)", "重构损失与 KL 散度", "后验坍塌"]
    assert _missing_glyphs(texts, caplog) == []


@pytest.fixture
def template_dir(tmp_path, monkeypatch):
    """A catalog with a plain message, an f-string template from a unit, and a figure title."""
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "zh_CN"}
    for english, chinese in (("classes, left to right:", "类别（从左到右）："),
                             ("KL(P || Q) = {kl_pq:.5f} nats from {p['n']:,} draws",
                              "由 {p['n']:,} 次抽样得 KL(P || Q) = {kl_pq:.5f} 奈特"),
                             ("Each σ-term is one wall of a bowl", "每个 σ 项是碗的一面壁"),
                             ("{{braces}} stay: {x}", "花括号 {{braces}} 保留：{x}")):
        po.append(polib.POEntry(msgid=english, msgstr=chinese))
    folder = tmp_path / "zh" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po.save(str(folder / "vaeutils.po"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    monkeypatch.setattr(i18n, "cjk_font_available", lambda: True)


def test_tr_fills_a_template_with_what_the_english_printed(template_dir):
    n, kl_pq = 12000, 0.0433561
    english = f"KL(P || Q) = {kl_pq:.5f} nats from {n:,} draws"
    assert i18n.tr(english) == english  # English: unchanged
    i18n.set_language("zh")
    assert i18n.tr(english) == "由 12,000 次抽样得 KL(P || Q) = 0.04336 奈特"  # reordered, same numbers
    assert i18n.tr("classes, left to right:") == "类别（从左到右）："
    assert i18n.tr("{braces} stay: 3") == "花括号 {braces} 保留：3"
    assert i18n.tr("KL(P || Q) = 0.1 nats") == "KL(P || Q) = 0.1 nats"  # another text: unchanged
    assert i18n.tr(3.5) == 3.5


def test_print_and_figures_speak_chinese_only_in_chinese(template_dir, capsys):
    def draw_title():
        fig = Figure(figsize=(3, 2))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.set_title("Each σ-term is one wall of a bowl")
        fig.canvas.draw()
        return ax.get_title()

    print("classes, left to right:", "a, b")
    assert draw_title() == "Each σ-term is one wall of a bowl"
    i18n.set_language("zh")
    print("classes, left to right:", "a, b")
    assert draw_title() == "每个 σ 项是碗的一面壁"
    i18n.set_language("en")
    print("classes, left to right:", "a, b")
    assert draw_title() == "Each σ-term is one wall of a bowl"
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "classes, left to right: a, b", "类别（从左到右）： a, b", "classes, left to right: a, b"]


def test_exercise_feedback_and_tables_of_the_real_units_are_chinese(monkeypatch):
    """The package catalog as the Chinese units use it: an answer check's verdict and hint, and a table's
    header and row labels, from the English code the two editions share."""
    from vaeutils import lesson

    monkeypatch.setattr(i18n, "cjk_font_available", lambda: True)
    i18n.set_language("zh")
    hint = "A KL is never negative."  # a hint of unit 01's exercise 2
    with pytest.raises(AssertionError) as caught:
        lesson.check_close("01-ex2", -1.0, 1.0, hint=hint)
    message = str(caught.value)
    assert message.startswith("01-ex2：") and not re.search(r"not yet|never negative", message)
    assert i18n.tr(hint) in message and re.search(r"[\u4e00-\u9fff]", i18n.tr(hint))
    table = lesson.markdown_table(["test set, nats per image", "untrained (section 3)"],
                                  [("reconstruction NLL", "550.1")])
    assert "nats per image" not in table and "reconstruction" not in table and "550.1" in table
    i18n.set_language("en")
    assert "reconstruction NLL" in lesson.markdown_table(["a", "b"], [("reconstruction NLL", "1")])
