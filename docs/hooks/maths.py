"""MkDocs hook: the pages' LaTeX becomes MathML when the site is built.

`pymdownx.arithmatex` (generic mode) wraps each formula of the Markdown pages
and docstrings as `<span class="arithmatex">\\(...\\)</span>` or
`<div class="arithmatex">\\[...\\]</div>`. This hook replaces each with the
MathML that latex2mathml makes of it. Browsers draw MathML themselves, so the
maths shows with no script and no network: the site reads the same offline.

latex2mathml writes a command it does not know as raw text (`\\foo` in the
page); the hook warns about each one, so that `mkdocs build --strict` fails
rather than publish it.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from latex2mathml.converter import convert

# Under "mkdocs.", so that the warnings count for --strict.
log = logging.getLogger("mkdocs.hooks.maths")

_FORMULA = re.compile(
    r'<(span|div) class="arithmatex">\\[(\[](.*?)\\[)\]]</\1>', re.S
)
# Operator names that latex2mathml does not know but draws as \operatorname.
_OPERATORS = re.compile(r"\\(arg)(?![A-Za-z])")
_TAG = re.compile(r"<[^>]*>")
_COMMAND = re.compile(r"\\[A-Za-z]+")


def _mathml(tex: str, display: str, where: str) -> str | None:
    tex = _OPERATORS.sub(r"\\operatorname{\1}", tex)
    try:
        mathml = convert(tex, display=display)
    except Exception as error:  # latex2mathml raises many kinds
        log.warning(
            "%s: latex2mathml cannot read %r (%s: %s)",
            where,
            tex,
            type(error).__name__,
            error,
        )
        return None
    unknown = _COMMAND.findall(html.unescape(_TAG.sub(" ", mathml)))
    if unknown:
        log.warning(
            "%s: latex2mathml does not know %s in %r",
            where,
            ", ".join(sorted(set(unknown))),
            tex,
        )
    return mathml


def on_page_content(content: str, page: Any, **kwargs: Any) -> str:
    where = page.file.src_uri

    def replace(match: re.Match[str]) -> str:
        tag, tex = match.group(1), html.unescape(match.group(2)).strip()
        display = "block" if tag == "div" else "inline"
        return _mathml(tex, display, where) or match.group(0)

    return _FORMULA.sub(replace, content)
