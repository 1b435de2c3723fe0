"""What a figure says, as a reader sees it: every text with where it stands, how high its smallest text is at the
notebook's width, and the checks the tests make of that (no raw key, legible, no count its data do not have).

``install()`` runs inside a notebook kernel (the live-kernel test sends it): from then on every figure a
notebook saves through ``Lab.save_figure`` is described into ``FIGURES``, with its caption.
"""

from __future__ import annotations

import re

FIGURES: list[dict] = []


def describe(fig, name: str = "", caption: str = "") -> dict:
    """name, caption, texts [{where, text, size (pt)}], lines (legend label -> x data), the width JupyterLab shows
    it at (px, before shrinking) and the height of its smallest text there (px)."""
    from restyle_lab.analysis.visual import FIGURE_DPI, NOTEBOOK_WIDTH_PX

    fig.canvas.draw()
    texts = []

    def add(where, artist):
        if artist is not None and artist.get_visible() and artist.get_text().strip():
            texts.append({"where": where, "text": artist.get_text(), "size": float(artist.get_fontsize())})

    def legend(leg):
        if leg is not None:
            add("legend", leg.get_title())
            for t in leg.get_texts():
                add("legend", t)

    add("title", getattr(fig, "_suptitle", None))
    for t in fig.texts:
        add("note" if t.get_gid() == "note" else "figure text", t)
    for leg in fig.legends:
        legend(leg)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            add("title", t)
        if ax.axison:
            add("axis label", ax.xaxis.label)
            add("axis label", ax.yaxis.label)
            for t in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
                add("tick", t)
        legend(ax.get_legend())
        for t in ax.texts:
            add("axis text", t)
    lines = {line.get_label(): [float(x) for x in line.get_xdata()] for ax in fig.axes for line in ax.get_lines()
             if not line.get_label().startswith("_")}
    width = fig.get_tightbbox(fig.canvas.get_renderer()).width * FIGURE_DPI  # the inline backend crops tight
    scale = min(1.0, NOTEBOOK_WIDTH_PX / width)
    smallest = min((t["size"] for t in texts), default=0.0) * FIGURE_DPI / 72 * scale
    return {"name": name, "caption": caption, "texts": texts, "lines": lines, "width_px": round(width),
            "smallest_text_px": smallest}


def install() -> None:
    """Describe every figure a notebook saves from now on into ``FIGURES`` (inside a kernel)."""
    import restyle_lab.run.lab as lab

    save = getattr(lab.save_figure, "unrecorded", lab.save_figure)

    def recording(fig, out_dir, name, caption=""):
        FIGURES.append(describe(fig, name, caption))
        return save(fig, out_dir, name, caption)

    recording.unrecorded = save
    lab.save_figure = recording


def raw_keys_in(figure: dict) -> list[tuple[str, str]]:
    """(key, text) of every method, metric or score key a figure shows (title, legend, axis, note, caption)."""
    from restyle_lab.analysis.visual import raw_keys

    found = []
    for text in [t["text"] for t in figure["texts"]] + [figure["caption"]]:
        for key in raw_keys():
            if re.search(rf"(?<![\w+.-]){re.escape(key)}(?![\w+])", text):
                found.append((key, text))
    return found


def stated_counts(figure: dict) -> list[tuple[str, int]]:
    """(text, n) of every 'n images' a figure's texts or caption state."""
    return [(text, int(n)) for text in [t["text"] for t in figure["texts"]] + [figure["caption"]]
            for n in re.findall(r"(\d+) images", text)]


def counted_method(text: str, methods) -> str | None:
    """The method whose display name a text starts with (the longest; a name's closing parenthesis may hold more:
    "optimisation (W, MSE loss)"), or None."""
    from restyle_lab.analysis.visual import display_name

    def stem(m):
        return display_name(m).removesuffix(")")

    starts = [m for m in methods if text.startswith(stem(m))]
    return max(starts, key=lambda m: len(stem(m)), default=None)
