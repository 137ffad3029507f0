"""The site's HTML: one stylesheet and a page skeleton; plain HTML and CSS that open from the file
system (no server, no script, nothing fetched from elsewhere)."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..files import atomic_write_text

STYLE = """
:root { --ink: #1d2330; --muted: #5d6678; --line: #d9dde6; --paper: #ffffff; --wash: #f5f6f9;
        --accent: #2f5fa7; --accent-wash: #e7eef9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--wash); }
header { background: var(--ink); color: #fff; padding: 10px 24px; display: flex; gap: 18px;
         align-items: baseline; flex-wrap: wrap; }
header .brand { font-weight: 700; letter-spacing: .02em; }
header a { color: #cfe0ff; text-decoration: none; }
header a:hover { text-decoration: underline; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 24px 48px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 6px; }
p.lead { color: var(--muted); margin: 0 0 12px; }
a { color: var(--accent); }
.stats { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.stat { background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: var(--muted); font-size: 13px; }
.panel { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
         margin: 12px 0; overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr:hover td { background: var(--accent-wash); }
pre { font: 12.5px/1.35 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; margin: 0; }
.graph { max-height: 720px; overflow: auto; text-align: center; }
.graph svg a rect { cursor: pointer; }
.graph svg a:hover rect { stroke-width: 3; }
.branches { display: flex; gap: 14px; align-items: flex-start; overflow-x: auto; padding-bottom: 6px; }
.branch { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 10px;
          flex: 1 0 0; min-width: 230px; }
.branch > p { color: var(--muted); font-size: 13px; margin: 0 0 8px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px; }
.branch .cards { grid-template-columns: 1fr; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.card h3 { font-size: 13px; color: var(--muted); font-weight: 600; }
.card .vis { display: flex; gap: 8px; align-items: flex-start; }
img.pixels { image-rendering: pixelated; }
img.vis { width: 112px; height: 112px; border-radius: 3px; background: #000; }
img.strip { max-width: 100%; height: auto; }
.card .vis p { margin: 0; font-size: 13px; color: var(--muted); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 12px;
           margin-bottom: 14px; align-items: start; }
.row { display: flex; gap: 12px; align-items: flex-start; margin-bottom: 14px; overflow-x: auto; }
img.grid { width: 300px; height: auto; }
figure { margin: 0; background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 8px;
         width: fit-content; }
.gallery figure { width: auto; }
.gallery figure img { width: 100%; height: auto; }
.gallery.wide { grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); }
img.photo { width: 480px; max-width: 100%; height: auto; }
.previews { display: flex; flex-direction: column; gap: 6px; margin-bottom: 14px; }
a.preview { display: flex; align-items: center; gap: 6px; background: var(--paper); border: 1px solid var(--line);
            border-radius: 6px; padding: 6px 10px; text-decoration: none; color: var(--ink); }
a.preview:hover { border-color: var(--accent); background: var(--accent-wash); }
a.preview span { width: 150px; font-weight: 600; }
img.thumb { width: 56px; height: 56px; border-radius: 3px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
figure img { display: block; max-width: 100%; }
.nav { display: flex; justify-content: space-between; margin: 18px 0 0; }
.muted { color: var(--muted); }
.pending { color: var(--muted); }
"""


def esc(text) -> str:
    """Text for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def link(href: str, text: str, **attrs: str) -> str:
    extra = "".join(f' {key}="{esc(value)}"' for key, value in attrs.items())
    return f'<a href="{esc(href)}"{extra}>{esc(text)}</a>'


def rel(path: Path, start: Path) -> str:
    """``path`` relative to the folder ``start`` as an href: forward slashes, URL-quoted (a module name
    may hold ``#``, ``?`` or ``%``)."""
    return quote(Path(os.path.relpath(path, start)).as_posix())


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numbers: set[int] = frozenset(),
          raw: bool = False) -> str:
    """A table; columns in ``numbers`` right-aligned; the header is escaped, the cells unless ``raw``."""
    def cell(tag: str, i: int, html_text: str) -> str:
        klass = ' class="n"' if i in numbers else ""
        return f"<{tag}{klass}>{html_text}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell("td", i, v if raw else esc(v)) for i, v in enumerate(row)) + "</tr>"
                     for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


_ANCHOR = re.compile(r'<a\b[^>]*?\bhref="([^"]*)"[^>]*>(.*?)</a>', re.DOTALL)


def without_missing_links(page: str, folder: Path) -> tuple[str, int]:
    """``page`` with each link to a file that does not exist (yet) turned into plain text, and how many
    there were. Links elsewhere (``https:``, ``#part``) stay."""
    missing = 0

    def keep(match: re.Match) -> str:
        nonlocal missing
        href = html.unescape(match.group(1))
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path or (folder / unquote(parts.path)).exists():
            return match.group(0)
        missing += 1
        return f'<span class="pending">{match.group(2)}</span>'

    return _ANCHOR.sub(keep, page), missing


def write_page(path: Path, title: str, body: str, style: Path, nav: Sequence[tuple[str, Path]] = (),
               deferred: dict[Path, str] | None = None) -> Path:
    """A complete page at ``path``: the shared stylesheet, a header with ``nav`` links, ``body``.

    With ``deferred``, links to pages not written yet are left out for now, so that every link on disk
    resolves at every moment (a build may be interrupted), and the whole page is kept in ``deferred``
    for :func:`write_deferred` once everything it links to exists.
    """
    folder = path.parent
    links = " ".join(link(rel(target, folder), text) for text, target in nav)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="stylesheet" href="{esc(rel(style, folder))}">
</head>
<body>
<header><span class="brand">inceptionkit</span> {links}</header>
<main>
{body}
</main>
</body>
</html>
"""
    if deferred is not None:
        written, missing = without_missing_links(page, folder)
        if missing:
            deferred[path] = page
            return atomic_write_text(path, written)
    return atomic_write_text(path, page)


def write_deferred(deferred: dict[Path, str]) -> None:
    """Write the pages :func:`write_page` held back, with all their links, now that their targets exist."""
    for path, page in deferred.items():
        atomic_write_text(path, page)
    deferred.clear()


def write_style(path: Path) -> Path:
    return atomic_write_text(path, STYLE.lstrip())
