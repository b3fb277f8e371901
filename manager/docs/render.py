"""Markdown to sanitised HTML: the one renderer of the viewer, the editor's preview and the API.

Python-Markdown with tables, fenced code highlighted by Pygments (CSS classes, no inline
styles), a table of contents, admonitions and math left as ``\\(...\\)`` / ``\\[...\\]`` text in
``arithmatex`` elements for KaTeX to typeset in the browser. The HTML then goes through nh3
with an explicit allow-list, so nothing a document holds can run script: no ``<script>``,
``<style>``, ``<svg>``, ``<iframe>`` or form elements, no event handler or ``style`` attribute,
only http, https and mailto links besides relative ones, only the classes the extensions
write, and element ids prefixed with ``doc-`` so a document cannot shadow the page's own ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import markdown
import nh3
from markdown.extensions.toc import slugify_unicode

__all__ = ["MAX_MARKDOWN_CHARS", "Rendered", "render_markdown", "sanitize_html"]

# A documentation page, not a book: bigger input is refused (the API says so with a 413).
MAX_MARKDOWN_CHARS = 200_000
ID_PREFIX = "doc-"

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
    "ol", "p", "pre", "s", "samp", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
# Removed with everything inside them (nh3 would otherwise keep their text).
DROPPED_WITH_CONTENT = {
    "script", "style", "svg", "math", "iframe", "object", "embed", "template", "noscript",
    "textarea", "select", "title", "xmp", "noembed", "frameset",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"class", "id", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Classes the extensions write: codehilite/Pygments tokens, admonitions, toc, arithmatex.
ADMONITION_KINDS = (
    "note", "info", "tip", "hint", "important", "warning", "caution", "attention",
    "danger", "error", "success", "example", "question", "abstract", "quote", "bug",
)  # fmt: skip
FIXED_CLASSES = {"codehilite", "admonition", "admonition-title", "toc", "arithmatex", "toclink",
                 *ADMONITION_KINDS}  # fmt: skip
PYGMENTS_CLASS_RE = re.compile(r"^[a-zA-Z]{1,3}[0-9]?$")
LANGUAGE_CLASS_RE = re.compile(r"^language-[a-z0-9_+-]{1,30}$")

LinkResolver = Callable[[str], str | None]


@dataclass(frozen=True)
class Rendered:
    """Sanitised HTML of a document and of its table of contents (empty without headings)."""

    html: str
    toc: str


def _slugify(value: str, separator: str) -> str:
    return ID_PREFIX + (slugify_unicode(value, separator) or "section")


def _markdown() -> markdown.Markdown:
    return markdown.Markdown(
        extensions=[
            "tables",
            "fenced_code",
            "codehilite",
            "admonition",
            "toc",
            "sane_lists",
            "pymdownx.arithmatex",
        ],
        extension_configs={
            "tables": {"use_align_attribute": True},
            "codehilite": {"guess_lang": False, "css_class": "codehilite"},
            "toc": {"slugify": _slugify, "permalink": False, "toc_depth": "2-4"},
            "pymdownx.arithmatex": {"generic": True},
        },
        output_format="html",
    )


def _keep_class(value: str) -> str | None:
    kept = [
        name
        for name in value.split()
        if name in FIXED_CLASSES or PYGMENTS_CLASS_RE.match(name) or LANGUAGE_CLASS_RE.match(name)
    ]
    return " ".join(kept) or None


def _is_safe_url(value: str) -> bool:
    # nh3 already checks schemes; this also refuses protocol-relative //host and backslashes
    # that some browsers read as a slash.
    text = value.strip()
    if "\\" in text or text.startswith("//"):
        return False
    scheme = urlsplit(text).scheme.lower()
    return scheme == "" or scheme in URL_SCHEMES


def sanitize_html(
    html: str,
    *,
    resolve_link: LinkResolver | None = None,
    resolve_image: LinkResolver | None = None,
) -> str:
    """Clean ``html`` with the allow-list; relative links/images go through the resolvers.

    A resolver returns the URL to use, or None to leave the value as it is.
    """

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "class":
            return _keep_class(value)
        if attribute == "id":
            return value if value.startswith(ID_PREFIX) else None
        if attribute in ("href", "src"):
            if not _is_safe_url(value):
                return None
            if value.startswith("#"):  # an anchor in the page: heading ids carry the prefix
                return value if value.startswith(f"#{ID_PREFIX}") else f"#{ID_PREFIX}{value[1:]}"
            relative = not urlsplit(value.strip()).scheme and not value.startswith("#")
            resolver = resolve_link if attribute == "href" else resolve_image
            if relative and resolver is not None:
                return resolver(value.strip()) or value
            return value
        return value

    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=attribute_filter,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def render_markdown(
    text: str,
    *,
    resolve_link: LinkResolver | None = None,
    resolve_image: LinkResolver | None = None,
) -> Rendered:
    """Render Markdown ``text`` to sanitised HTML and a sanitised table of contents.

    Raises ValueError when ``text`` is longer than :data:`MAX_MARKDOWN_CHARS`.
    """
    if len(text) > MAX_MARKDOWN_CHARS:
        raise ValueError(
            f"the document has {len(text):,} characters; the limit is {MAX_MARKDOWN_CHARS:,}"
        )
    converter = _markdown()
    html = converter.convert(text)
    toc_tokens = getattr(converter, "toc_tokens", [])
    toc = getattr(converter, "toc", "") if toc_tokens else ""
    return Rendered(
        html=sanitize_html(html, resolve_link=resolve_link, resolve_image=resolve_image),
        toc=sanitize_html(toc),
    )
