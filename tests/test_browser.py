"""The course in a real browser: JupyterLab started as the README's first command starts it, headless
Chromium driven by Playwright, notebook 00 run from the Run menu, its frame slider moved.

Needs Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`) and the `playwright` Python
package (test extras; its own browsers are never downloaded: it drives the system Chromium). Without
them the test is skipped on a laptop and fails under CI (`CI` set), where `.ci/run` installs both.
Every wait is bounded and the server is always stopped; on failure a screenshot is saved in the
test's temporary folder and its path is printed.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vtlib import course

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("VTLIB_CHROMIUM", "/usr/bin/chromium")
NOTEBOOK = "00_video_as_data.ipynb"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    """JupyterLab on 127.0.0.1, a free port and a token, serving a copy of notebook 00; stopped after."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run: {missing}; .ci/run installs it")
        pytest.skip(missing)
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)   # the repo's notebook stays untouched
    port, token = _free_port(), "vtlib-browser-test"
    cmd = course.lab_command()                    # the README command's arguments (--allow-root as root)
    cmd[0] = sys.executable                       # with this test's Python
    cmd[cmd.index("notebooks")] = str(root)
    cmd += ["--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True"]
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)                  # render every cell, not only those scrolled into view
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ, VTLIB_NO_PROGRESS="1", JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"))
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                tail = (tmp_path / "jupyterlab.log").read_text()[-2000:]
                raise AssertionError(f"JupyterLab exited ({server.returncode}): {tail}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("JupyterLab did not answer within 90 s") from None
                time.sleep(0.5)
        yield {"url": url, "token": token, "tmp": tmp_path}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def _screenshot(page, tmp: Path, name: str) -> str:
    path = tmp / f"{name}.png"
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception as e:  # a failed screenshot must not hide the real failure
        return f"(screenshot failed: {e})"
    return str(path)


def test_notebook_00_runs_in_jupyterlab_and_its_slider_moves(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')")
            page.wait_for_function(                      # the kernel is up before we run anything
                "() => { const w = window.jupyterapp.shell.currentWidget;"
                " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
                " && w.sessionContext.session.kernel.status === 'idle'; }", timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(                      # every code cell has run: a number, no [*]
                "() => { const w = window.jupyterapp.shell.currentWidget; const cells = w.content.widgets;"
                " return cells.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim())"
                ".every(c => c.model.executionCount !== null && !c.node.querySelector('.jp-InputPrompt')"
                ".textContent.includes('*')) && w.sessionContext.session.kernel.status === 'idle'; }",
                timeout=300_000, polling=1000)

            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                                  ":has-text('Traceback'), .jp-RenderedText:has-text('Traceback')")
            assert errors.count() == 0, f"a cell shows an error: {errors.first.inner_text()[:500]}"
            assert page.locator(":text('Error displaying widget')").count() == 0

            view = page.locator(".widget-interact").first     # interact(): the slider and its picture
            view.scroll_into_view_if_needed()
            slider = view.locator(".widget-slider").first
            slider.wait_for(state="visible")
            assert "frame" in view.inner_text(), f"the slider has no 'frame' label: {view.inner_text()[:200]!r}"
            picture = view.locator("img").first
            picture.wait_for(state="visible")
            before = picture.get_attribute("src")
            handle = slider.locator(".noUi-handle, [role='slider']").first
            handle.focus()
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(old) => { const img = document.querySelector('.widget-interact img');"
                " return img && img.src !== old; }",
                arg=before, timeout=30_000)
            assert view.locator(".widget-readout").first.inner_text().strip() == "5"
            assert picture.get_attribute("src") != before
        except BaseException:
            (lab["tmp"] / "page.html").write_text(page.content())
            shot = _screenshot(page, lab["tmp"], "browser-failure")
            print(f"screenshot of the failure: {shot}")
            raise
        finally:
            browser.close()
