"""Markdown written by people (an expert's report, an engagement's scope) as safe HTML.

CommonMark plus tables, with raw HTML off (it shows as text), then sanitised by an allowlist:
headings, paragraphs, lists, code, quotes, tables, emphasis, rules and links to http, https
or mailto only, each with ``rel="nofollow noopener"``. No images, no scripts, no attributes
beyond a link's ``href`` and ``title``.
"""

from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markupsafe import Markup

_TAGS = {
    *("h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr"),
    *("ul", "ol", "li", "blockquote", "pre", "code", "em", "strong", "a"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}

_parser = MarkdownIt("commonmark", {"html": False}).enable("table")


def _image_as_text(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    # A report shows no pictures (nothing is fetched from elsewhere): the alt text stands in.
    alt = renderer.renderInlineAsText(tokens[idx].children or [], options, env)
    return escapeHtml(alt)


_parser.add_render_rule("image", _image_as_text)


def render_markdown(text: str | None) -> Markup:
    """``text`` (Markdown) rendered and sanitised, ready to put in a page as is."""
    if not text:
        return Markup("")
    html = _parser.render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        url_relative="deny",
        link_rel="nofollow noopener",
    )
    return Markup(clean)  # safe: nh3 kept only the allowlist above
