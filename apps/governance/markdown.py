"""Proposal descriptions: Markdown written by anyone, shown to everyone.

Raw HTML in the source is not interpreted at all (a ``<script>`` shows as
text), and the HTML that Markdown produces still goes through nh3's
allow-list, which also drops ``javascript:`` links.
"""

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
    "sup",
    "sub",
    "dl",
    "dt",
    "dd",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


def _converter() -> md.Markdown:
    converter = md.Markdown(extensions=["extra", "sane_lists"], output_format="html")
    # Without these two, Markdown copies raw HTML blocks and inline tags through.
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    return converter


def render(text: str) -> SafeString:
    html = _converter().convert(text or "")
    return mark_safe(
        nh3.clean(
            html,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer nofollow",
        )
    )
