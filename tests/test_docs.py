"""What `mkdocs build --strict` (run by `make test` before pytest) cannot see: README.md is not a page of the
site, so its length and its links are checked here."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_README_LINES = 200  # a short README; the manual is the site (docs/)


def test_readme_is_short():
    assert len(README.read_text().splitlines()) <= MAX_README_LINES, "move the detail into a page under docs/"


def test_readme_links_and_make_targets_exist():
    text = README.read_text()
    targets = {t for t in re.findall(r"(?m)^([a-z][\w-]*):", (REPO / "Makefile").read_text())}
    for make_target in set(re.findall(r"(?m)^make (\w+)", text)):
        assert make_target in targets, f"README names `make {make_target}`, which the Makefile lacks"
    for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in link:
            assert (REPO / link).is_file(), f"README links to {link}, which does not exist"
