"""The renderer: what Markdown becomes, and hostile Markdown that must never carry script."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from manager.docs.render import MAX_MARKDOWN_CHARS, render_markdown

# Each of these tries to get script (or a script-carrying URL) into the page.
HOSTILE = {
    "script tag": "<script>alert(1)</script>",
    "script in heading": "# Title <script>alert(1)</script>",
    "event handler": '<img src="x.png" onerror="alert(1)">',
    "event handler on div": '<div onmouseover="alert(1)">hover</div>',
    "javascript link": "[click](javascript:alert(1))",
    "mixed-case javascript link": "[click](JaVaScRiPt:alert(1))",
    "entity-encoded javascript": '<a href="jav&#x61;script:alert(1)">x</a>',
    "tab in scheme": '<a href="java\tscript:alert(1)">x</a>',
    "data html link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "svg onload": '<svg onload="alert(1)"><script>alert(2)</script></svg>',
    "svg image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "iframe": '<iframe src="javascript:alert(1)"></iframe>',
    "object": '<object data="javascript:alert(1)"></object>',
    "style url": '<p style="background:url(javascript:alert(1))">x</p>',
    "style element": "<style>body{background:url(javascript:alert(1))}</style>",
    "form": '<form action="javascript:alert(1)"><button>go</button></form>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base tag": '<base href="javascript:alert(1)//">',
    "math html": "$$\n</span><img src=x onerror=alert(1)>\n$$",
    "math inline html": "$<script>alert(1)</script>$",
    "math href": r"$\href{javascript:alert(1)}{x}$",
    "mathml": '<math><maction xlink:href="javascript:alert(1)">x</maction></math>',
    "code fence html": "```html\n<script>alert(1)</script>\n```",
    "reference link": "[x][1]\n\n[1]: javascript:alert(1)",
    "autolink": "<javascript:alert(1)>",
    "id clobbering": '<div id="sm-i18n">x</div><a name="csrf-token">y</a>',
    "protocol-relative": "[x](//evil.example/)",
}

SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
    "ol", "p", "pre", "s", "samp", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip


class Elements(HTMLParser):
    """Every element and attribute of an HTML fragment, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def problems(html: str) -> list[str]:
    parser = Elements()
    parser.feed(html)
    found = []
    for tag, attrs in parser.found:
        if tag not in SAFE_TAGS:
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on") or name in ("style", "name", "srcdoc", "formaction"):
                found.append(f"{tag}[{name}]")
            if name == "id" and not value.startswith("doc-"):
                found.append(f"{tag}[id={value}]")
            if name in ("href", "src"):
                scheme = urlsplit(value.strip()).scheme.lower()
                if scheme not in ("", "http", "https", "mailto") or value.startswith("//"):
                    found.append(f"{tag}[{name}={value}]")
    return found


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_markdown_carries_no_script(source):
    out = render_markdown(source)
    assert problems(out.html) == [], out.html
    assert problems(out.toc) == []


def test_code_blocks_keep_the_text_escaped():
    out = render_markdown("```html\n<script>alert(1)</script>\n```")
    assert "&lt;" in out.html and "script" in out.html


def test_features_tables_code_toc_admonitions_math():
    text = (
        "# Guide\n\n[TOC]\n\n## Setup\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n"
        '```python\nx = 1\n```\n\n!!! warning "Careful"\n    Hot surface.\n\n'
        "Energy $E = mc^2$ and\n\n$$\n\\int_0^1 x\\,dx\n$$\n\n[Setup](#setup)\n"
    )
    out = render_markdown(text)
    assert '<td align="right">2</td>' in out.html
    assert '<div class="codehilite">' in out.html and '<span class="n">x</span>' in out.html
    assert '<div class="admonition warning">' in out.html
    assert '<span class="arithmatex">\\(E = mc^2\\)</span>' in out.html
    assert '<div class="arithmatex">\\[' in out.html
    assert '<h2 id="doc-setup">Setup</h2>' in out.html
    assert 'href="#doc-setup"' in out.html  # an author's #setup points at the prefixed id
    assert 'href="#doc-setup"' in out.toc


def test_links_get_rel_and_safe_schemes_survive():
    out = render_markdown("[a](https://example.org) [b](mailto:x@example.org) [c](other.md)")
    assert 'href="https://example.org" rel="noopener noreferrer"' in out.html
    assert 'href="mailto:x@example.org"' in out.html
    assert 'href="other.md"' in out.html


def test_unknown_classes_are_dropped():
    out = render_markdown('<div class="position-fixed top-0 w-100 note">x</div>')
    assert 'class="note"' in out.html and "position-fixed" not in out.html


def test_the_size_limit():
    render_markdown("a" * MAX_MARKDOWN_CHARS)
    with pytest.raises(ValueError, match="limit is 200,000"):
        render_markdown("a" * (MAX_MARKDOWN_CHARS + 1))


def test_the_checker_itself_sees_script():
    raw = '<svg onload="a()"></svg><a href="javascript:x">y</a><p style="x" id="main">z</p>'
    assert len(problems(raw)) == 5
