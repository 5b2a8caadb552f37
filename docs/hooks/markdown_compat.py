"""MkDocs hook: read the project's GitHub-style Markdown as GitHub renders it.

The README, the guides and the model cards (``src/hrface/weights/*.md``, shipped in the wheel and read on GitHub)
start lists and tables right under a paragraph line and nest list items (and the tables inside them) by two
spaces.  Python-Markdown, which MkDocs uses, wants a blank line before a list or a table and four spaces per
nesting level; without them a list renders as one run-on paragraph.  This hook adjusts the layout of every page
before it is rendered (outside code fences; the text is unchanged), so the sources keep one layout for both.

The docstrings that mkdocstrings renders name code with Sphinx roles (``:class:`Detector```); the role's
prefix is dropped from the rendered page, which keeps the name as code.
"""

from __future__ import annotations

import re

ITEM = re.compile(r"^( *)([-*+]|\d+\.) ")
FENCE = re.compile(r"^ *(```|~~~)")
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):<code>~?")


def _is_table_row(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) > 1 and stripped.startswith("|") and stripped.endswith("|")


def github_layout(markdown: str) -> str:
    out: list[str] = []
    in_fence = False
    in_list = False
    in_block = False  # inside a paragraph or table that continues a list item after a blank line
    for line in markdown.split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
            continue
        if in_fence:
            out.append(line)
            continue
        prev = out[-1] if out else ""
        if not line.strip():
            in_block = False
            out.append(line)
            continue
        indent = len(line) - len(line.lstrip(" "))
        item = ITEM.match(line)
        if item:
            if (not in_list or in_block) and prev.strip():
                out.append("")  # a list straight under a paragraph, or an item right after an item's block
            in_list, in_block = True, False
            line = " " * (2 * indent) + line[indent:]  # 2 spaces per level -> 4
        elif in_list and indent == 0 and not prev.strip():
            in_list = False  # a paragraph after a blank line ends the list
        elif in_list and 0 < indent < 4 and (not prev.strip() or _is_table_row(line)):
            line = "    " + line[indent:]  # a block inside a top-level item (paragraph after a blank, table)
            in_block = True
        elif in_block and 0 < indent < 4:
            line = "    " + line[indent:]  # the rest of that block
        if _is_table_row(line) and prev.strip() and not _is_table_row(prev):
            out.append("")  # a table straight under a paragraph
        out.append(line)
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return github_layout(markdown)


def on_page_content(html: str, page, config, files) -> str:
    return ROLE.sub("<code>", html)
