"""Pages as blocks, rendered to self-contained HTML or to Markdown; a resolved config as TOML.

A page is a list of :class:`Block` (headings, paragraphs, lists, tables, preformatted text, PNG
images): :func:`render_html` writes it as one HTML file with its style inline and images as data
URIs, every text escaped; :func:`render_markdown` as Markdown. :func:`markdown_blocks` reads the
Markdown gdlab writes back into blocks; :func:`toml_text` writes a resolved config as TOML.
"""

from __future__ import annotations

import base64
import html
import json
import re
from typing import NamedTuple, Sequence

__all__ = ["Block", "table", "render_html", "render_markdown", "markdown_blocks", "toml_text"]


class Block(NamedTuple):
    """One piece of a page: ``kind`` "h1"/"h2"/"h3" (``text``), "p" (``text``, ``code`` spans
    kept), "pre" (``text``), "list" (``rows``: items), "table" (``head``, ``rows``) or "img"
    (``text``: the file name, ``data``: the PNG)."""

    kind: str
    text: str = ""
    head: tuple = ()
    rows: tuple = ()
    data: bytes = b""


def table(head: Sequence[str], rows) -> Block:
    return Block("table", head=tuple(head), rows=tuple(tuple(map(str, r)) for r in rows))


# --- rendering ----------------------------------------------------------------------------------

_STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;"
          "line-height:1.45}table{border-collapse:collapse;margin:.5em 0}"
          "td,th{border:1px solid #bbb;padding:.2em .6em;text-align:left;vertical-align:top}"
          "th{background:#eee}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}"
          "img{max-width:100%}code{background:#f0f0f0}")


def _inline(text: str) -> str:
    """``text`` escaped, with Markdown `code` spans as <code>."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


def render_html(title: str, blocks: Sequence[Block]) -> str:
    """A self-contained HTML page: inline style, images as data URIs, every text escaped."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{b.kind}>{_inline(b.text)}</{b.kind}>")
        elif b.kind == "pre":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(r)}</li>" for r in b.rows) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b.head)
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                           for r in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "img":
            src = "data:image/png;base64," + base64.b64encode(b.data).decode("ascii")
            out.append(f'<figure><img src="{src}" alt="{html.escape(b.text, quote=True)}">'
                       f"<figcaption>{html.escape(b.text)}</figcaption></figure>")
        else:
            raise ValueError(f"unknown block kind {b.kind!r}")
    return "\n".join([*out, "</body>", "</html>"]) + "\n"


def render_markdown(blocks: Sequence[Block]) -> str:
    """The same blocks as Markdown (an image by its file name, next to report.md)."""
    cell = lambda c: str(c).replace("|", "\\|")
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "pre":
            out += ["```", b.text, "```", ""]
        elif b.kind == "list":
            out += [f"- {r}" for r in b.rows] + [""]
        elif b.kind == "table":
            out += [f"| {' | '.join(map(cell, b.head))} |", "|" + "---|" * len(b.head)]
            out += [f"| {' | '.join(map(cell, r))} |" for r in b.rows] + [""]
        elif b.kind == "img":
            out += [f"![{b.text}]({b.text})", ""]
    return "\n".join(out).rstrip() + "\n"


def markdown_blocks(text: str) -> list[Block]:
    """The Markdown gdlab writes (the gradient lab's report.md: headings, paragraphs, numbered and
    bulleted items, pipe tables) as blocks."""
    blocks, para, piped, items = [], [], [], []

    def flush():
        if para:
            blocks.append(Block("p", " ".join(para)))
        if piped:
            split = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", r)[1:-1]]
                     for r in piped]
            blocks.append(table(split[0], [r for r in split[1:]
                                           if not all(set(c) <= {"-", ":"} for c in r)]))
        if items:
            blocks.append(Block("list", rows=tuple(items)))
        para.clear(), piped.clear(), items.clear()

    for line in text.splitlines():
        heading = re.match(r"(#{1,3}) (.*)", line)
        item = re.match(r"(?:\d+\.|-) (.*)", line)
        if heading:
            flush()
            blocks.append(Block(f"h{len(heading[1])}", heading[2]))
        elif line.startswith("|"):
            piped.append(line)
        elif item:
            items.append(item[1])
        elif line.strip():
            para.append(line.strip())
        else:
            flush()
    flush()
    return blocks


# --- the config as TOML -------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)   # a TOML basic string is a JSON string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(map(_toml_value, v)) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML value for {type(v).__name__}")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def toml_text(config: dict) -> str:
    """A resolved config (summary.json ``config``: sections of keys) as TOML that reads back to
    it (``tomllib.loads(toml_text(c)) == c``)."""
    out = []
    for section, table in config.items():
        out.append(f"[{_toml_key(section)}]")
        out += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None]
        out.append("")
    return "\n".join(out)
