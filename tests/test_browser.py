"""The notebooks in JupyterLab, in headless Chromium (Debian's ``chromium``, driven by playwright from PyPI;
nothing is downloaded at run time): the explorer runs whole and its image, step slider, method control and
change-map normalisation change its figure, offering each image the methods stored for it and saying why the
others are absent; a re-run step_heatmaps cell still shows its figures, and its maths renders; quality_time
re-runs after a change of its optimisation subset; fpn_vs_simple shows its figure.

CI (``.ci/run``) installs Chromium and sets RESTYLE_REQUIRE_BROWSER=1, so a missing browser fails there instead
of skipping. RESTYLE_SCREENSHOTS=FOLDER keeps the screenshots there, downscaled (README's docs/figures/ copies
come from here). The notebooks run on the smoke run's store: nothing is inverted here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from live_kernel import kernel_environment, parametrised, smoke_parameters

CHROMIUM = Path("/usr/bin/chromium")
# as root Chromium needs --no-sandbox; the rest keep it off the network this machine does not have
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
WAIT_MS = 90_000  # Run All on a loaded 2-core machine: kernel start, imports, the figures
FIGURE = ".widget-output img"  # the explorer's figure, inside its Output widget
NOTEBOOKS = ("explorer", "step_heatmaps", "quality_time", "fpn_vs_simple")
SCREENSHOT_WIDTH = 900  # px: README's copies are downscaled to this width
SHORTER = {"step_heatmaps": {"n_show": 2}}  # a figure that fits the page: its screenshot is of the figure alone
# JupyterLab's news and update checks reach the internet, and their toast would sit in the screenshot; a
# notebook opened in a fresh JupyterLab asks which kernel to start unless told to start its own
SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                                 "checkForUpdates": False},
            "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True}}


def need(ok: bool, message: str) -> None:
    if not ok:
        if os.environ.get("RESTYLE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} (CI installs it: see .ci/run)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    need(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(smoke_store, tmp_path_factory):
    """A JupyterLab server on loopback over a folder with the two notebooks (smoke parameters injected):
    (base url, token)."""
    folder = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        params = {**smoke_parameters(smoke_store, name, "browser"), **SHORTER.get(name, {})}
        nbformat.write(parametrised(name, params), folder / f"{name}.ipynb")
    settings = folder.parent / f"{folder.name}-settings"
    for path, values in SETTINGS.items():
        (settings / path).parent.mkdir(parents=True, exist_ok=True)
        (settings / path).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={settings / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(settings / "server.log", "w")
    server = subprocess.Popen(cmd, cwd=folder, env=kernel_environment(smoke_store), stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("JupyterLab did not start:\n" + (settings / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()  # jupyter server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def open_and_run_all(browser, jupyterlab, name, typed: str = ""):
    """``name`` open in JupyterLab, ``typed`` added to its injected parameters as a user would, then Run All."""
    url, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/lab/tree/{name}.ipynb?token={token}&reset")  # reset: no tab of an earlier page comes back
    # the status bar says Idle once this notebook's kernel has started (Run All before that runs nothing)
    page.locator(".jp-StatusBar-Widget").filter(has_text="(ipykernel) | Idle").wait_for()
    if typed:
        page.locator(".jp-CodeCell").filter(has_text="injected parameters").locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+End")
        page.keyboard.type(typed)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
    return page


@contextlib.contextmanager
def page_of(browser, jupyterlab, name: str, tmp_path: Path, typed: str = ""):
    """``name`` open in JupyterLab after Run All (``typed`` added to its parameters first); on a failure the
    page's screenshot is kept beside the test."""
    page = open_and_run_all(browser, jupyterlab, name, typed)
    try:
        yield page
    except BaseException:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot of the failing page: {tmp_path / 'failure.png'}")
        raise
    finally:
        page.close()


def keep_screenshot(element, tmp_path: Path, name: str) -> Path:
    """A screenshot of ``element``, kept beside the test and, with RESTYLE_SCREENSHOTS=FOLDER, downscaled there."""
    from PIL import Image

    path = tmp_path / f"{name}.png"
    element.screenshot(path=str(path))
    folder = os.environ.get("RESTYLE_SCREENSHOTS")
    if folder:
        image = Image.open(path)
        if image.width > SCREENSHOT_WIDTH:
            image = image.resize((SCREENSHOT_WIDTH, round(image.height * SCREENSHOT_WIDTH / image.width)),
                                 Image.LANCZOS)
        image.save(Path(folder) / f"{name}.png", optimize=True)
    return path


def output_of(page, code: str):
    """The output area of the code cell whose source holds ``code``."""
    return page.locator(".jp-CodeCell").filter(has_text=code).locator(".jp-OutputArea").first


def figure_after(page, previous: str | None) -> str:
    """The src of the explorer's figure once it differs from ``previous`` (a data: URL of the PNG)."""
    page.wait_for_function("([sel, prev]) => { const i = document.querySelector(sel); "
                           "return i && i.complete && i.src.startsWith('data:image/png') && i.src !== prev; }",
                           arg=[FIGURE, previous or ""])
    return page.locator(FIGURE).get_attribute("src")


def control(page, kind: str, label: str):
    """The ipywidgets control of ``kind`` (its CSS class) whose description is ``label``."""
    return page.locator(f".{kind}").filter(has=page.get_by_text(label, exact=True))


def test_explorer_controls_change_the_figure(browser, jupyterlab, tmp_path):
    with page_of(browser, jupyterlab, "explorer", tmp_path) as page:
        shown = figure_after(page, None)

        handle = control(page, "widget-slider", "step").locator(".noUi-handle")
        handle.focus()
        page.keyboard.press("ArrowRight")
        shown = figure_after(page, shown)

        method = control(page, "widget-dropdown", "method").locator("select")
        options = [o.replace("\xa0", " ") for o in method.locator("option").all_inner_texts()]  # ipywidgets: nbsp
        # methods by their display names, the optimisation and hybrids among them (stored for every smoke image)
        for label in ("ReStyle-pSp", "ReStyle-e4e", "optimisation (W)", "ReStyle-pSp + optimisation"):
            assert label in options, options
        assert "pSp" not in options, f"a single pass has no steps to explore: {options}"
        note = page.locator(".widget-html").filter(has_text="not offered for this image").inner_text()
        assert "pSp; e4e" in note and "starts from the input" in note, note
        method.select_option(label="ReStyle-e4e")
        shown = figure_after(page, shown)

        control(page, "widget-dropdown", "image").locator("select").select_option(index=1)
        shown = figure_after(page, shown)

        control(page, "widget-dropdown", "change map").locator("select").select_option(index=1)  # per step
        figure_after(page, shown)

        out = page.locator(".jp-Cell").filter(has=page.locator(FIGURE)).locator(".jp-OutputArea").first
        keep_screenshot(out, tmp_path, "explorer_jupyterlab")


def test_quality_time_after_a_change_of_its_subset(browser, jupyterlab, tmp_path):
    """A smaller optimisation subset typed into the parameters (the smoke run stored all 4 images), Run All: the
    inversions are read back from the store, 2 of the 4 stored images, timed in one pass, and the figure shows."""
    with page_of(browser, jupyterlab, "quality_time", tmp_path, typed="\noptim_images = 2") as page:
        figure = output_of(page, "plot_quality_time").locator("img")
        figure.wait_for()
        shown = " ".join(page.locator(".jp-OutputArea").all_inner_texts())
        assert "reusing stored images: optim_w 2 of 2" in shown and "timed 7 methods in one pass" in shown, shown
        keep_screenshot(figure, tmp_path, "quality_time_jupyterlab")


def test_fpn_vs_simple_shows_its_figure(browser, jupyterlab, tmp_path):
    with page_of(browser, jupyterlab, "fpn_vs_simple", tmp_path) as page:
        figure = output_of(page, "plot_table").locator("img")
        figure.wait_for()
        keep_screenshot(figure, tmp_path, "fpn_vs_simple_jupyterlab")


def test_a_rerun_step_heatmaps_cell_still_shows_its_figures(browser, jupyterlab, tmp_path):
    with page_of(browser, jupyterlab, "step_heatmaps", tmp_path) as page:
        cell = page.locator(".jp-CodeCell").filter(has_text="plot_image_heatmaps")
        figures = cell.locator(".jp-OutputArea-output img")
        figures.nth(1).wait_for()  # one per ReStyle method
        assert page.locator(".jp-MarkdownCell mjx-container").count() > 0, "the markdown maths did not render"
        keep_screenshot(figures.first, tmp_path, "step_heatmaps_jupyterlab")
        prompt = cell.locator(".jp-InputPrompt").inner_text()

        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function("([el, before]) => { const t = el.innerText; "
                               "return t !== before && /\\[\\d+\\]/.test(t); }",
                               arg=[cell.locator(".jp-InputPrompt").element_handle(), prompt])
        assert figures.count() == 2, "the re-run cell lost its figures"
