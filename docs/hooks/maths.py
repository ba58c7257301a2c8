"""MkDocs hook: the pages' LaTeX becomes MathML when the site is built.

`pymdownx.arithmatex` (generic mode) wraps each formula of the Markdown pages and
docstrings as `<span class="arithmatex">\\(...\\)</span>` or
`<div class="arithmatex">\\[...\\]</div>`. This hook replaces each with the MathML that
latex2mathml makes of it. Browsers draw MathML themselves, so the maths shows with no
script and no network: the site reads the same offline.
"""

from __future__ import annotations

import html
import re
from typing import Any

from latex2mathml.converter import convert

_FORMULA = re.compile(r'<(span|div) class="arithmatex">\\[(\[](.*?)\\[)\]]</\1>', re.S)


def _mathml(match: re.Match[str]) -> str:
    tag, tex = match.group(1), html.unescape(match.group(2))
    return convert(tex.strip(), display="block" if tag == "div" else "inline")


def on_page_content(content: str, **kwargs: Any) -> str:
    return _FORMULA.sub(_mathml, content)
