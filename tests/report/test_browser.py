"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol.

Checks what a person would see for a run with one deliberate failure: the failing matrix cell
is visible and red, its error histogram is drawn (loaded, non-empty, red bars on screen), and
the page loads with no console errors and no network requests. A control page proves the
console/network watch does catch both.

Needs Debian's `chromium` (.ci/run installs it) and websocket-client (the `test` extra);
without them the test skips, except under CI (``CI`` set), where it fails.
Set TFINTEROP_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tfinterop import cli, report

try:
    import websocket
except ImportError:
    if os.environ.get("CI"):
        raise  # CI is meant to run this test: a collection error, not a skip
    pytest.skip("websocket-client not installed", allow_module_level=True)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
]
TIMEOUT_S = 60.0


def chromium_path() -> str:
    found = os.environ.get("TFINTEROP_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium not installed (apt-get install chromium)")


class Chromium:
    """One headless Chromium with one page, and the DevTools events it sent."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.log = profile.parent / "chromium.log"
        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(f"chromium did not start; log: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.load(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10)
        )
        page = next(t for t in targets if t.get("type") == "page")
        # No Origin header: Chromium then accepts the DevTools connection without allow-lists.
        self._socket = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=TIMEOUT_S, suppress_origin=True
        )
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            for message in self.events:
                if message["method"] == event:
                    self.events.remove(message)
                    return message
            message = json.loads(self._socket.recv())
            if "method" in message:
                self.events.append(message)
        raise AssertionError(f"no {event} within {TIMEOUT_S}s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait for the load event (images included), watching from the start."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("0")  # flush events queued before the load event

    def screenshot(self, clip: dict[str, float] | None = None) -> bytes:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": clip is None}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])

    def problems(self, page_url: str) -> tuple[list[str], list[str]]:
        """Console errors/exceptions, and requests for anything but the page and data: URIs."""
        errors, requests = [], []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                errors.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(
                    f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}"
                )
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if url != page_url and not url.startswith("data:"):
                    requests.append(url)
        return errors, requests

    def close(self) -> None:
        if getattr(self, "_socket", None) is not None:
            self._socket.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@pytest.fixture
def browser(tmp_path: Path):
    chromium = Chromium(chromium_path(), tmp_path / "profile")
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            chromium.call(f"{domain}.enable")
        chromium.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield chromium
    finally:
        chromium.close()


def _keep(name: str, data: bytes, tmp_path: Path) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    keep = os.environ.get("TFINTEROP_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


FAILING_CELL_JS = """
(() => {
  const cells = [...document.querySelectorAll('table.matrix td.cell[data-status="fail"]')];
  if (cells.length !== 1) return {count: cells.length};
  const cell = cells[0];
  cell.scrollIntoView({block: 'center'});
  const r = cell.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  const row = cell.parentElement.querySelectorAll('td');
  const header = [...cell.closest('table').querySelectorAll('thead th')]
    .map(th => th.textContent.trim());
  return {
    count: 1,
    text: cell.innerText,
    background: getComputedStyle(cell).backgroundColor,
    visible: r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight,
    onTop: cell.contains(top),
    row: [row[0].innerText, row[1].innerText, row[2].innerText],
    consumer: header[[...row].indexOf(cell)],
    detail: cell.querySelector('a').getAttribute('href').slice(1),
  };
})()
"""

HISTOGRAM_JS = """
(id => {
  const detail = document.getElementById(id);
  const img = detail.querySelector('img.histogram');
  if (!img) return {present: false};
  img.scrollIntoView({block: 'center'});
  const r = img.getBoundingClientRect();
  return {
    present: true, open: detail.open, complete: img.complete,
    naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
    src: img.src.slice(0, 40),
    clip: {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height},
  };
})
"""


def _rgb(css: str) -> tuple[int, int, int]:
    numbers = css[css.index("(") + 1 : css.index(")")].split(",")
    return int(numbers[0]), int(numbers[1]), int(numbers[2])


def test_failing_cell_is_red_with_a_histogram_and_the_page_is_offline(
    browser: Chromium, tmp_path: Path, failing_document, failing_cell
) -> None:
    # Rendered the way a user re-renders a saved run: JSON on disk -> `tfinterop report`.
    report.write_json(tmp_path / "result.json", failing_document)
    page = tmp_path / "report.html"
    assert cli.main(["report", str(tmp_path / "result.json"), "--html", str(page)]) == 0
    url = page.as_uri()
    browser.open(url)

    cell = browser.evaluate(FAILING_CELL_JS)
    assert cell["count"] == 1, cell
    fixture, fmt, signature, consumer = failing_cell
    assert (cell["row"], cell["consumer"]) == ([fixture, fmt, signature], consumer)
    assert cell["visible"] and cell["onTop"], cell
    assert cell["text"].startswith("FAIL"), cell
    red, green, blue = _rgb(cell["background"])
    assert red >= 150 and green <= 90 and blue <= 90, cell["background"]

    histogram = browser.evaluate(f"{HISTOGRAM_JS}({json.dumps(cell['detail'])})")
    assert histogram["present"] and histogram["open"], histogram
    assert histogram["complete"] and histogram["naturalWidth"] > 100, histogram
    assert histogram["naturalHeight"] > 50 and histogram["src"].startswith("data:image/svg+xml")
    # What is on screen there: drawn bars in the failure colour, not a blank box.
    shot = Image.open(io.BytesIO(browser.screenshot(histogram["clip"]))).convert("RGB")
    _keep("failing-histogram.png", _png(shot), tmp_path)
    colors = shot.getcolors(maxcolors=1 << 20) or []
    red_pixels = sum(n for n, (r, g, b) in colors if r > 150 and g < 90 and b < 90)
    assert len(colors) > 10 and red_pixels > 200, (len(colors), red_pixels)

    browser.evaluate("window.scrollTo(0, 0)")
    _keep("report.png", browser.screenshot(), tmp_path)
    errors, requests = browser.problems(url)
    assert errors == [] and requests == []


def test_the_console_and_network_watch_catches_both(browser: Chromium, tmp_path: Path) -> None:
    """Control: a page that logs an error and fetches from loopback is flagged."""
    page = tmp_path / "control.html"
    page.write_text(
        "<!DOCTYPE html><title>c</title><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('deliberate')</script>"
    )
    browser.open(page.as_uri())
    errors, requests = browser.problems(page.as_uri())
    assert any("deliberate" in e for e in errors), errors
    assert requests == ["http://127.0.0.1:9/x.png"]


NOT_APPLICABLE_JS = """
(() => {
  const header = [...document.querySelectorAll('table.matrix thead th')]
    .map(th => th.textContent.trim());
  const boxes = [...document.querySelectorAll('table.matrix tbody tr')].flatMap(tr => {
    const tds = [...tr.querySelectorAll('td')];
    return tds.slice(3).map((td, i) => {
      const r = td.getBoundingClientRect();
      return {
        format: tds[1].innerText.trim(), consumer: header[i + 3], text: td.innerText.trim(),
        background: getComputedStyle(td).backgroundColor, shown: r.width > 0 && r.height > 0,
      };
    });
  });
  // Every SKIP a reader can see, in the matrix and in the cell list.
  const skips = [...document.querySelectorAll('body *')].filter(e =>
    e.children.length === 0 && e.textContent.trim() === 'SKIP' && e.getClientRects().length);
  return {boxes, skips: skips.map(e => e.closest('table.matrix') ? 'matrix' : 'list')};
})()
"""


def planned_document(tmp_path: Path) -> dict[str, Any]:
    """What `interop` plans for a fixture exported as frozen and tflite, with every real
    consumer and one declared skip (rust on frozen). The consumers' builds "failed", so
    nothing runs: the cells that exist are errors and the declared skip."""
    from tfinterop.consumers import ALL_CONSUMERS
    from tfinterop.fixtures import Expectation, Tolerance
    from tfinterop.manifest import Case, TensorEntry
    from tfinterop.pipeline.cases import CaseRef
    from tfinterop.pipeline.run import run_consumers
    from tfinterop.pipeline.settings import RunSettings

    entry = TensorEntry("x", "x:0", "float32", [2], "inputs/x.npy")
    refs = [
        CaseRef(
            "layout",
            Case(fmt, "serving_default", f"model.{fmt}", [entry], [entry]),
            tmp_path,
            lambda key, runtime: Tolerance(),
            lambda consumer, fmt, signature, runtime: (
                Expectation("skip", "declared on purpose")
                if (consumer, fmt) == ("rust", "frozen")
                else None
            ),
            {},
        )
        for fmt in ("frozen", "tflite")
    ]
    failed = {c.name: "`cc` exited with status 1" for c in ALL_CONSUMERS}
    cells, _, _ = run_consumers(
        list(ALL_CONSUMERS), refs, RunSettings(build_dir=tmp_path, build_failures=failed)
    )
    return report.document(cells, {})


def test_not_applicable_pairs_show_no_skip_box(browser: Chromium, tmp_path: Path) -> None:
    """python, rust and c do not load tflite, tflite does not load frozen graphs: those boxes
    are empty (no SKIP, not the skip colour); the one SKIP on the page is the declared one."""
    report.write_json(tmp_path / "result.json", planned_document(tmp_path))
    page = tmp_path / "report.html"
    assert cli.main(["report", str(tmp_path / "result.json"), "--html", str(page)]) == 0
    browser.open(page.as_uri())
    seen = browser.evaluate(NOT_APPLICABLE_JS)
    boxes = {(b["format"], b["consumer"]): b for b in seen["boxes"]}
    from tfinterop.consumers import ALL_CONSUMERS

    assert set(boxes) == {
        (fmt, consumer.name) for fmt in ("frozen", "tflite") for consumer in ALL_CONSUMERS
    }, boxes
    not_applicable = [
        (fmt, c.name) for fmt in ("frozen", "tflite") for c in ALL_CONSUMERS if not c.supports(fmt)
    ]
    assert ("tflite", "c") in not_applicable and ("frozen", "tflite") in not_applicable
    skip_colour = boxes[("frozen", "rust")]["background"]
    assert boxes[("frozen", "rust")]["text"] == "SKIP"
    for pair in not_applicable:
        box = boxes[pair]
        assert box["shown"] and box["text"] == "", box
        assert box["background"] != skip_colour, box
    assert sorted(seen["skips"]) == ["list", "matrix"], seen["skips"]
    _keep("not-applicable.png", browser.screenshot(), tmp_path)
    assert browser.problems(page.as_uri()) == ([], [])


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
