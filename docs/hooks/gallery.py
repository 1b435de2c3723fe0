"""The gallery: the mini notebooks as `make reproduce` executed them, when they exist.

`restyle-lab reproduce --domain mini` leaves the executed notebooks in results/mini/notebooks/ (results/ is
not committed), so a fresh clone has none: then the gallery page says how to make them, and the strict build
still passes. When they exist, each becomes a page under gallery/ (rendered by mkdocs-jupyter, which runs
nothing) and a nav entry under Gallery.
"""

from __future__ import annotations

import shutil
import tempfile
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


_LINKS: list[str] = []  # the temporary folder of links made for this build


@event_priority(50)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files, config):
    found = _notebooks(config)
    if not found:
        return files
    # mkdocs-jupyter reads a page's source from its src_dir (a File.generated one has none), so each notebook is
    # linked into a temporary folder as gallery/NAME.ipynb and served from there
    links = Path(tempfile.mkdtemp(prefix="restyle-gallery-"))
    _LINKS.append(str(links))
    (links / "gallery").mkdir()
    for path in found:
        (links / "gallery" / path.name).symlink_to(path.resolve())
        files.append(File(f"gallery/{path.name}", str(links), config.site_dir, config.use_directory_urls))
    return files


def on_post_build(config):
    while _LINKS:
        shutil.rmtree(_LINKS.pop(), ignore_errors=True)


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
