"""Text that came from outside (a URL, a stored card, a file name) shown as plain text in the dashboard.

Why this exists: Streamlit renders the body of ``st.warning``/``st.error``/``st.info`` as Markdown (GitHub-flavoured,
plus its own ``:red[...]``, ``:material/...:`` and emoji shortcodes, and ``$...$`` LaTeX). A deep link's value echoed
in a warning therefore became markup: ``?lr=[click here](https://evil.example)`` drew a clickable link inside the
app's own warning, ``![x](https://tracker.example/t.png)`` made every visitor's browser load a tracking image,
``**Certified**`` faked bold text, and a 10 KB value was echoed whole. :func:`markdown_text` escapes what Markdown
(and Streamlit's extensions) would interpret, so the reader sees exactly the characters of the URL, and
:func:`one_line` bounds the length of any one message.

UI-free (no streamlit import): pages call it where they render text they did not write.
"""

from __future__ import annotations

import re

#: Characters that start Markdown, GFM or Streamlit markup anywhere in a line: emphasis and strikethrough
#: (``* _ ~``), code (`` ` ``), links and images (``[ ] !``), autolinks and HTML (``< >``), Streamlit's
#: ``:color[...]`` and shortcodes (``:``, escaped below only where it could start one), LaTeX (``$``), table
#: cells (``|``), headings (``#``), e-mail autolinks (``@``), and the backslash itself.
_ALWAYS = set("\\`*_~[]!<>$|#@")
#: U+2060 WORD JOINER: invisible, never a line break. Some markup is found *after* parsing, by regular expressions
#: over the text (GFM's literal autolinks ``https://…``, ``www.…``, ``a@b.c``; emoji and Material shortcodes
#: ``:smile:``, ``:material/home:``), where a backslash escape has already been consumed: a joiner inside the
#: pattern is what stops those (measured in Chromium: escaped alone, all four still rendered).
JOINER = "\u2060"
#: Where a joiner goes: inside ``://``, after ``www``, after ``@``, and after a colon that opens a shortcode
#: (``:name:``, ``:material/…``, Streamlit's ``:red[…]``). Not after every colon: ``random:0.1`` copied from a
#: warning must paste back as it is.
_BREAK = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)(?=\S)|(?<=:)(?=[\w+-]+[:[]|material/)")
#: A line that starts like a block: list item, quote, heading, thematic break (escaped at that character), or an
#: ordered list ``1.``/``1)`` (escaped at its dot or bracket).
_BLOCK_START = re.compile(r"^\s*(?:(?P<mark>[-+*>#=])|\d+(?P<num>[.)]))")

#: Longest message shown whole; a longer one keeps its start (what is wrong) and its end (what is used instead).
MAX_LINE_CHARS = 400


def markdown_text(text: str) -> str:
    """``text`` escaped so that Streamlit's Markdown shows it character for character, as plain text.

    Every ASCII punctuation character that can open markup is backslash-escaped (CommonMark renders ``\\X`` as
    ``X`` for any ASCII punctuation ``X``); the patterns found after parsing (literal autolinks, shortcodes) get an
    invisible :data:`JOINER`; a line that would start a block (``- ``, ``1. ``, ``> ``) is escaped there; newlines
    become spaces (one message, one line). What the reader sees is ``text``, character for character.

    For example ``[click](https://evil.example)`` becomes ``\\[click\\](https:⁠//evil.example)`` (a joiner after
    the colon): it reads the same, and is neither a link nor an autolink.
    """
    text = _BREAK.sub(JOINER, " ".join(str(text).splitlines()))
    escaped = "".join("\\" + ch if ch in _ALWAYS else ch for ch in text)
    match = _BLOCK_START.match(escaped)
    if match:
        at = match.start("mark") if match.group("mark") else match.start("num")
        escaped = escaped[:at] + "\\" + escaped[at:]
    return escaped


def visible(markdown: str) -> str:
    """What a reader sees of :func:`markdown_text`'s output: the joiners and the backslash escapes removed (its
    inverse; for tests and logs)."""
    return re.sub(r"\\(.)", r"\1", markdown.replace(JOINER, ""))


def one_line(text: str, *, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` on one line and at most about ``limit`` characters: a longer one keeps its first three quarters and
    its end, with the number of characters left out (``… (9,650 characters cut) …``)."""
    text = " ".join(str(text).splitlines())
    if len(text) <= limit:
        return text
    head, tail = (3 * limit) // 4, limit // 4 - 30
    return f"{text[:head]} … ({len(text) - head - tail:,} characters cut) … {text[-tail:]}"


def plain(text: str, *, limit: int = MAX_LINE_CHARS) -> str:
    """What a page passes to ``st.warning``/``st.error`` for text it did not write: :func:`one_line`, then
    :func:`markdown_text`."""
    return markdown_text(one_line(text, limit=limit))
