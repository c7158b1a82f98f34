"""The language of what vaeutils prints and draws: English, or Chinese for the Chinese edition.

    device = config.setup(seed=0, lang="zh")   # the Chinese units' setup cell; or VAELAB_LANG=zh
    print(_("rate {rate:.1f} nats").format(rate=r))  # numbers, identifiers: through fields
    ax.set_title(_fig("The rate–distortion plane"))  # text drawn in a figure

``_(message)`` looks ``message`` up in the package's gettext catalog (a ``.po`` file),
``vaeutils/locale/LANG/LC_MESSAGES/vaeutils.po``, for the language the setup cell chose
(English, the default, returns it unchanged). The catalog is read at run time with polib: no
compile step. A message without a (finished) translation stays English. ``_fig`` is ``_`` for
text drawn in a figure (titles, axis labels, legends): Chinese needs a CJK font there, and
without one the figure keeps its English labels instead of drawing boxes for missing glyphs.
``N_`` only marks a string (a table header kept in a constant) for the catalog; translate it
where it is shown, with ``_(HEADER)``.

The units' own code is the same in both editions, so what it prints and draws is translated where it
is shown: in Chinese, ``print`` and matplotlib's text pass through :func:`tr`, which finds a
message either as it is or as the English of a template (``"rate {rate:.1f} nats"``, taken from an
f-string of the code by ``python -m coursekit zh update``) and fills the Chinese template with the
same pieces. Exercise hints and table headers go through :func:`tr` too.

Numbers and code identifiers are never translated: put them into the message as ``{fields}``, so the
Chinese message carries the same fields and the numbers print as in the English units.
"""

from __future__ import annotations

import builtins
import os
import re
from pathlib import Path

LANGUAGES = ("en", "zh")
ENV = "VAELAB_LANG"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "vaeutils"
CJK_FONT = "Noto Sans CJK SC"
INSTALL_FONT = "sudo apt-get install fonts-noto-cjk"
# language tags people write for the two editions (case, "-" or "_" and ".UTF-8" do not matter)
_ALIASES = {"en": "en", "en_us": "en", "en_gb": "en", "c": "en", "posix": "en",
            "zh": "zh", "zh_cn": "zh", "zh_hans": "zh", "zh_hans_cn": "zh", "zh_sg": "zh"}

_language: str | None = None  # None: not chosen yet (VAELAB_LANG, else English, on first use)
_font_ok: bool | None = None  # whether figures can draw Chinese (checked when Chinese is chosen)
_saved_rc: dict | None = None  # matplotlib's font settings before Chinese, restored for English
_tables: dict[str, tuple[dict, list]] = {}  # lang -> (exact messages, templates) for tr()
_hooks: dict = {}  # what print and Text.draw were before Chinese, restored for English


def normalize(lang, name: str = "lang") -> str:
    """``lang`` as ``"en"`` or ``"zh"`` (``"zh_CN"``, ``"zh-Hans"``, ``"en_US.UTF-8"`` … accepted),
    or a ValueError naming ``name`` and the languages there are."""
    if not isinstance(lang, str):
        raise TypeError(f"{name} must be a language code such as 'zh' or 'en', "
                        f"got {type(lang).__name__}")
    key = lang.strip().split(".")[0].replace("-", "_").lower()
    if key not in _ALIASES:
        raise ValueError(f"{name}={lang!r} is not a language of the course; use 'en' (the default) "
                         f"or 'zh' (the Chinese edition)")
    return _ALIASES[key]


def get_language() -> str:
    """The language chosen by ``config.setup(lang=...)`` or :func:`set_language`, else
    ``VAELAB_LANG``, else English."""
    if _language is None:
        wanted = os.environ.get(ENV, "").strip()
        set_language(normalize(wanted, name=ENV) if wanted else "en")
    return _language


def set_language(lang) -> str:
    """Print and draw in ``lang`` from now on (``"en"`` or ``"zh"``); returns the normalized code.

    Chinese sets matplotlib up for Chinese text (Noto Sans CJK SC beside DejaVu Sans); without
    that font it prints one line on how to install it, and figures keep English labels."""
    global _language, _font_ok
    lang = normalize(lang)
    _language = lang
    if lang == "en":
        _restore_fonts()
        _unhook()
        return lang
    _font_ok = cjk_font_available()
    _hook()
    if _font_ok:
        _use_cjk_font()
    else:
        print(_("vaeutils: figures need a CJK font to show Chinese ({font}); install it with "
                "`{command}` and restart the kernel. Until then figures keep English labels.")
              .format(font=CJK_FONT, command=INSTALL_FONT))
    return lang


def catalog(lang: str | None = None) -> dict[str, str]:
    """The finished translations of ``lang`` (default: the current language), English ->
    translation; empty for English and for a language without a catalog file. Fuzzy and
    untranslated entries are left out: those messages stay English."""
    lang = get_language() if lang is None else normalize(lang)
    return {} if lang == "en" else _table(lang)[0]


def _(message: str) -> str:
    """``message`` in the current language (unchanged in English, or when it has no translation)."""
    return tr(message)


def _fig(message: str) -> str:
    """``_`` for text drawn in a figure: English when the figure could not draw the Chinese."""
    return tr(message, figure=True)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it (translate it where it is shown)."""
    return message


def cjk_font_available() -> bool:
    """Whether matplotlib can draw Chinese with Noto Sans CJK SC. A font installed after
    matplotlib built its font list is picked up from the system's font folders."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    if any(font.name == CJK_FONT for font in manager.ttflist):
        return True
    for path in font_manager.findSystemFonts():
        if Path(path).name.startswith("NotoSansCJK"):
            try:
                manager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return any(font.name == CJK_FONT for font in manager.ttflist)


def _use_cjk_font() -> None:
    """The usual font first (Latin, Greek, digits and signs look as in the English units), then
    Noto Sans CJK SC, which matplotlib falls back to for each Chinese character."""
    global _saved_rc
    import matplotlib

    rc = matplotlib.rcParams
    if _saved_rc is None:
        _saved_rc = {"font.family": list(rc["font.family"])}
    # matplotlib falls back glyph by glyph along font.family (a generic name such as "sans-serif"
    # stands for the first installed font of its list only, so the CJK font is named after it)
    families = [f for f in _saved_rc["font.family"] if f != CJK_FONT]
    rc["font.family"] = [*families, CJK_FONT]


def _restore_fonts() -> None:
    global _saved_rc
    if _saved_rc is not None:
        import matplotlib

        matplotlib.rcParams.update(_saved_rc)
        _saved_rc = None


# --------------------------------------------------------------------------------------------------
# tr(): messages as they are, and templates matched against the text the English code produced

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _template(text: str) -> tuple[re.Pattern, list[str]] | None:
    """The pattern that matches what the English template ``text`` prints, and its fields in
    order; None when ``text`` has no field."""
    pattern, fields, last = [], [], 0
    for m in _FIELD.finditer(text):
        pattern.append(re.escape(text[last:m.start()]))
        last = m.end()
        if m.group(1) is None:
            pattern.append(re.escape(m.group(0)[0]))
        else:
            pattern.append("(.*?)")
            fields.append(m.group(1))
    if not fields:
        return None
    pattern.append(re.escape(text[last:]))
    return re.compile("".join(pattern), re.S), fields


def _fill(template: str, values: dict[str, str]) -> str:
    def one(m):
        if m.group(1) is None:
            return m.group(0)[0]
        return values.get(m.group(1), m.group(0))
    return _FIELD.sub(one, template)


def _table(lang: str) -> tuple[dict, list]:
    """The catalog of ``lang`` read once with polib (no compile step): its messages, and its
    templates as (pattern, fields, translation), the most specific first."""
    if lang not in _tables:
        exact, templates = {}, []
        path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.is_file():
            import polib

            for e in polib.pofile(str(path)).translated_entries():
                if "fuzzy" in e.flags:
                    continue
                exact[e.msgid] = e.msgstr
                if (found := _template(e.msgid)) is not None:
                    templates.append((*found, e.msgstr))
        templates.sort(key=lambda t: -len(t[0].pattern))  # the most specific first
        _tables[lang] = exact, templates
    return _tables[lang]


def tr(text, figure: bool = False):
    """``text`` in the current language: its translation, or the translation of the template it
    was printed from, with the same numbers and names; unchanged in English, for a text without a
    translation, and for anything that is not a ``str``. ``figure``: as :func:`_fig`."""
    if not isinstance(text, str) or (_language or get_language()) == "en":
        return text
    if figure and not _font_ok:
        return text
    exact, templates = _table(_language)
    if text in exact:
        return exact[text]
    if not re.search(r"[A-Za-z]", text):
        return text
    for pattern, fields, chinese in templates:
        if (m := pattern.fullmatch(text)) is not None:
            return _fill(chinese, dict(zip(fields, m.groups())))
    return text


def _print(*args, **kwargs):
    return _hooks["print"](*(tr(a) for a in args), **kwargs)


def _hook() -> None:
    """In Chinese: ``print`` and matplotlib's text translate what the (English) code hands them."""
    if "print" not in _hooks:
        _hooks["print"] = builtins.print
        builtins.print = _print
    if "draw" not in _hooks:
        from matplotlib.text import Text

        original = _hooks["draw"] = Text.draw

        def draw(self, renderer):
            text = self.get_text()
            if (chinese := tr(text, figure=True)) != text:
                self.set_text(chinese)
            return original(self, renderer)

        Text.draw = draw


def _unhook() -> None:
    if "print" in _hooks:
        builtins.print = _hooks.pop("print")
    if "draw" in _hooks:
        from matplotlib.text import Text

        Text.draw = _hooks.pop("draw")
