"""The gallery: the mini notebooks as `make reproduce` executed them, when they exist.

`restyle-lab reproduce --domain mini` leaves the executed notebooks in results/mini/notebooks/ (results/ is
not committed), so a fresh clone has none: then the gallery page says how to make them, and the strict build
still passes. When they exist, each becomes a page under gallery/ (rendered by mkdocs-jupyter, which runs
nothing) and a nav entry under Gallery.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

# where `restyle-lab reproduce --domain mini` writes the executed notebooks (restyle_lab/reproduce.py)
EXECUTED = Path("results") / "mini" / "notebooks"
PAGE = "gallery/index.md"
MARK = "<!-- gallery: docs/hooks/gallery.py writes the list here -->"


def _notebooks(config) -> list[Path]:
    folder = Path(config.config_file_path).parent / EXECUTED
    return sorted(folder.glob("*.ipynb")) if folder.is_dir() else []


def on_config(config):
    found = _notebooks(config)
    if found:
        for i, entry in enumerate(config.nav):
            if isinstance(entry, dict) and entry.get("Gallery") == PAGE:
                config.nav[i] = {"Gallery": [PAGE] + [{p.stem: f"gallery/{p.name}"} for p in found]}
    return config


# mkdocs-jupyter reads a page from its src_dir (a File.generated one has none), so each notebook is linked into
# this folder as gallery/NAME.ipynb and served from there; a fixed folder keeps mkdocs-jupyter's cache hitting
LINKS = Path(".cache") / "restyle-gallery"


@event_priority(50)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files, config):
    links = Path(config.config_file_path).parent / LINKS
    shutil.rmtree(links, ignore_errors=True)  # links to notebooks gone since the last build go too
    for path in _notebooks(config):
        (links / "gallery").mkdir(parents=True, exist_ok=True)
        (links / "gallery" / path.name).symlink_to(path.resolve())
        files.append(File(f"gallery/{path.name}", str(links), config.site_dir, config.use_directory_urls))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE:
        return markdown
    found = _notebooks(config)
    if found:
        listing = "\n".join(f"- [{p.stem}]({p.name})" for p in found)
        text = f"The notebooks executed by the last `make reproduce` in this checkout ({EXECUTED}/):\n\n{listing}"
    else:
        text = ("!!! note \"Not built\"\n    No executed notebooks were found in "
                f"`{EXECUTED}/` when this site was built. Run `make reproduce` (minutes on a CPU), "
                "then `make docs`, and this page lists them with their figures.")
    return markdown.replace(MARK, text)
