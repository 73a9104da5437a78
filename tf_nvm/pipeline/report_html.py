"""``report.html``: the report's Markdown rendered by Python-Markdown (``markdown``, with its ``tables``
extension) into one self-contained page, the PNG plots embedded as data URIs so the page can be mailed or attached
on its own."""

import base64
import html
import os
import xml.etree.ElementTree as etree

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

__all__ = ["html_page", "STYLE"]

STYLE = ("body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
         "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:right}th{background:#eee}"
         "img{max-width:100%}ul{margin:.2em 0}code{background:#f4f4f4;padding:0 .2em}")
"""The page's CSS."""


class _EmbedImages(Treeprocessor):
    """Replaces the ``src`` of every ``<img>`` naming a PNG of the report folder (a bare file name) by a
    ``data:image/png;base64`` URI; any other ``src`` is left as written."""

    def __init__(self, md: markdown.Markdown, folder: str) -> None:
        super().__init__(md)
        self.folder = folder

    def run(self, root: etree.Element) -> None:
        for image in root.iter("img"):
            name = image.get("src", "")
            path = os.path.join(self.folder, name)
            if name == os.path.basename(name) and name.endswith(".png") and os.path.isfile(path):
                with open(path, "rb") as handle:
                    data = base64.b64encode(handle.read()).decode("ascii")
                image.set("src", f"data:image/png;base64,{data}")


class _ReportExtension(Extension):
    """The report's Markdown: raw HTML and entities shown as text (the report quotes an experiment's description
    and notes as written), the plots embedded (`_EmbedImages`)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # the name Python-Markdown calls
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.inlinePatterns.deregister("entity")
        md.treeprocessors.register(_EmbedImages(md, self.folder), "tf_nvm_embed_images", 0)


def html_page(title: str, markdown_lines: list[str], folder: str) -> str:
    """One self-contained HTML page of ``report.md`` (its headings, lists, tables, bold, code and paragraphs)
    with the PNGs it names (relative to ``folder``) embedded as data URIs.

    Args:
        title: the page title.
        markdown_lines: the lines of ``report.md``.
        folder: the report folder holding the PNGs.

    Returns:
        the HTML page.
    """
    body = markdown.markdown("\n".join(markdown_lines), extensions=["tables", _ReportExtension(folder)],
                             output_format="html")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + body + "\n</body></html>\n")
