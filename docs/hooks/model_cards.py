"""MkDocs hook: the shipped model cards (``src/hrface/weights/*.md``) become pages of the site.

The cards live beside the weights in the package (they ship in the wheel) and are not copied into ``docs/``:
each card is added as a generated page ``models/shipped/NAME.md`` with its text as it is, and the nav entry
whose value is ``models/shipped/`` is replaced by one entry per card.  A card added, renamed or removed in
``src/hrface/weights/`` is picked up by the next build without touching ``mkdocs.yml``.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

CARDS = Path(__file__).resolve().parents[2] / "src" / "hrface" / "weights"
PREFIX = "models/shipped/"


def _cards() -> list[Path]:
    return sorted(CARDS.glob("*.md"))


def _fill_nav(items: list) -> None:
    for item in items:
        if isinstance(item, dict):
            for title, value in item.items():
                if value == PREFIX:
                    item[title] = [{card.stem: f"{PREFIX}{card.name}"} for card in _cards()]
                elif isinstance(value, list):
                    _fill_nav(value)


def on_config(config):
    if config.nav:
        _fill_nav(config.nav)
    return config


def on_files(files: Files, config) -> Files:
    for card in _cards():
        files.append(File.generated(config, f"{PREFIX}{card.name}", content=card.read_text(encoding="utf-8")))
    return files
