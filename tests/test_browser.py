"""The notebooks in JupyterLab, in headless Chromium (Debian's ``chromium``, driven by playwright from PyPI;
nothing is downloaded at run time): the explorer runs whole and its step slider, method control and change-map
normalisation change its figure; a re-run latent_change cell still shows its figures, and its maths renders.

CI (``.ci/run``) installs Chromium and sets RESTYLE_REQUIRE_BROWSER=1, so a missing browser fails there instead
of skipping. RESTYLE_SCREENSHOT=PATH keeps the explorer's screenshot (README's docs/figures/ copy comes from
here). The notebooks run on the smoke run's store: nothing is inverted here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
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
NOTEBOOKS = ("explorer", "latent_change")
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
        nbformat.write(parametrised(name, smoke_parameters(smoke_store, name, "browser")), folder / f"{name}.ipynb")
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


def open_and_run_all(browser, jupyterlab, name):
    url, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/lab/tree/{name}.ipynb?token={token}&reset")  # reset: no tab of an earlier page comes back
    # the status bar says Idle once this notebook's kernel has started (Run All before that runs nothing)
    page.locator(".jp-StatusBar-Widget").filter(has_text="(ipykernel) | Idle").wait_for()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
    return page


@contextlib.contextmanager
def page_of(browser, jupyterlab, name: str, tmp_path: Path):
    """``name`` open in JupyterLab after Run All; on a failure the page's screenshot is kept beside the test."""
    page = open_and_run_all(browser, jupyterlab, name)
    try:
        yield page
    except BaseException:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot of the failing page: {tmp_path / 'failure.png'}")
        raise
    finally:
        page.close()


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
        options = method.locator("option").all_inner_texts()
        assert "restyle_psp" in options and "restyle_e4e" in options, options
        assert "psp" not in options, f"a single pass has no steps to explore: {options}"
        method.select_option("restyle_e4e")
        shown = figure_after(page, shown)

        control(page, "widget-dropdown", "change map").locator("select").select_option(index=1)  # per step
        figure_after(page, shown)

        out = page.locator(".jp-Cell").filter(has=page.locator(FIGURE)).locator(".jp-OutputArea").first
        out.screenshot(path=str(tmp_path / "explorer.png"))
        if os.environ.get("RESTYLE_SCREENSHOT"):
            shutil.copyfile(tmp_path / "explorer.png", os.environ["RESTYLE_SCREENSHOT"])


def test_a_rerun_latent_change_cell_still_shows_its_figures(browser, jupyterlab, tmp_path):
    with page_of(browser, jupyterlab, "latent_change", tmp_path) as page:
        cell = page.locator(".jp-CodeCell").filter(has_text="plot_latent_change")
        figures = cell.locator(".jp-OutputArea-output img")
        figures.nth(1).wait_for()  # one per ReStyle method
        assert page.locator(".jp-MarkdownCell mjx-container").count() > 0, "the markdown maths did not render"
        prompt = cell.locator(".jp-InputPrompt").inner_text()

        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function("([el, before]) => { const t = el.innerText; "
                               "return t !== before && /\\[\\d+\\]/.test(t); }",
                               arg=[cell.locator(".jp-InputPrompt").element_handle(), prompt])
        assert figures.count() == 2, "the re-run cell lost its figures"
