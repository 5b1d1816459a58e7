"""Helpers for the browser tests: the app on a free port, headless Chromium, drawing on the canvas,
and pictures of MNIST digits with a known answer (also used by test_app.py)."""

import asyncio
import http.client
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import cv2
import numpy as np

import datasets  # the project's root is on sys.path through conftest.py
from deploy import serve

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright's own browser downloads are not used
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these three, Chromium's background connections are refused here and slow every page down.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 90  # seconds for the server's health check on a busy 2-core machine
CANVAS = "canvas.upper-canvas"  # Fabric.js's event layer, inside the component's shadow root
INK_CANVAS = "canvas.dc-canvas.lower-canvas"  # the layer Fabric.js renders the strokes on
INK_PIXELS = """canvas => {
  const {data} = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let count = 0;
  for (let index = 0; index < data.length; index += 4) if (data[index + 3] > 128 && data[index] < 128) count += 1;
  return count;
}"""  # how many dark pixels a canvas layer shows
POINT_SPACING = 6  # canvas pixels between pointer events: Fabric.js smooths the path between them


def arc(centre, radii, start_degrees, end_degrees, count=40):
    """Points along an elliptic arc; angles clockwise from 12 o'clock, as on the canvas (y down)."""
    angles = np.radians(np.linspace(start_degrees, end_degrees, count))
    return [(centre[0] + radii[0] * np.sin(angle), centre[1] - radii[1] * np.cos(angle)) for angle in angles]


# Digits as pointer paths in the coordinates of the 280x280 canvas: one list of vertices per stroke.
SEVEN = [[(75, 62), (205, 62), (185, 100), (125, 228)]]
ONE = [[(150, 40), (138, 240)]]
ZERO = [arc((140, 140), (62, 92), 0, 360)]
THREE = [arc((138, 92), (52, 48), -70, 180) + arc((138, 185), (60, 52), 0, 235)]


def model_under_test(committed_model):
    """The model the app tests use: the committed one, or $DIGIT_MODEL when it is set."""
    return Path(os.environ.get("DIGIT_MODEL") or committed_model)


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """`streamlit run app.py` on a free port for the length of a `with` block."""

    STOP_TIMEOUT = 10  # seconds between asking the server to stop and killing it

    def __init__(self, environment=None):
        self.environment = {**os.environ, **(environment or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)  # noqa: SIM115 (the server's lifetime)
        self.process = None
        self.started = None  # time.perf_counter() when the process was started

    def command(self):
        return serve.app_command(self.port)

    def __enter__(self):
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.environment, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_until_healthy()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_healthy(self):
        try:
            serve.wait_until_healthy(self.url, {"the app": self.process}, START_TIMEOUT)
        except serve.DeployError as error:
            raise RuntimeError(f"{error}:\n{self.log_text()}") from None

    def log_text(self):
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def __exit__(self, *exception):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


class Deployment(AppServer):
    """`python deploy/serve.py N`, what `./run.sh serve N` runs: nginx on a free port in front of N replicas.

    nginx's configuration and logs, and the replicas' logs, are in state_dir.
    """

    STOP_TIMEOUT = 30  # serve.py stops nginx and every replica first

    def __init__(self, state_dir, replicas=2, environment=None):
        super().__init__(environment)
        self.state_dir, self.replicas = Path(state_dir), replicas

    def command(self):
        return [
            sys.executable,
            "deploy/serve.py",
            str(self.replicas),
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            "--first-app-port",
            "0",
        ]

    def log_text(self):
        parts = [
            super().log_text(),
            *(path.read_text(errors="replace")[-2000:] for path in sorted(self.state_dir.glob("*.log"))),
        ]
        return "\n".join(parts)

    def replica_of(self, source_address):
        """The replica ("127.0.0.1:PORT") nginx sends this client address to, from its access log."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(source_address, 0))
        connection.request("GET", f"/_stcore/health?from={source_address}")
        connection.getresponse().read()
        connection.close()
        marker = f"from={source_address} "
        for _ in range(50):  # nginx writes the line as the request ends, at about the time the answer arrives
            lines = (self.state_dir / "access.log").read_text().splitlines()
            found = [line.rsplit("upstream=", 1)[1] for line in lines if marker in line]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise LookupError(f"no request from {source_address} in {self.state_dir / 'access.log'}")


async def client_relay(port, source_address):
    """A TCP relay on a free 127.0.0.1 port to 127.0.0.1:port, connecting from source_address.

    Every page opened through it is one more client to nginx, as separate users are: Chromium
    itself always connects from 127.0.0.1. Returns the asyncio server and the relay's URL.
    """

    async def pipe(source, destination):
        try:
            while data := await source.read(65536):
                destination.write(data)
                await destination.drain()
        except ConnectionError:
            pass
        finally:
            destination.close()

    async def relay(reader, writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source_address, 0)
            )
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def launch_chromium(playwright):
    """Headless Debian Chromium driven by Playwright."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


# Watches the app's WebSocket both ways. Each change on the page sends one (the canvas sends
# its drawing 200 ms after a stroke ends) and the server answers with its app run's messages.
WATCH_SOCKET_SCRIPT = """
Object.assign(window, {appLastMessageAt: 0, appSent: 0, appLastSentAt: 0});
window.WebSocket = class extends window.WebSocket {
  constructor(...settings) {
    super(...settings);
    this.addEventListener("message", () => { window.appLastMessageAt = performance.now(); });
  }
  send(data) {
    window.appSent += 1;
    window.appLastSentAt = performance.now();
    super.send(data);
  }
};
"""
SEND_DELAY_MS = 400  # the canvas sends a drawing 200 ms after the last stroke; wait longer than that
APP_NOT_RUNNING = "document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning'"
QUIET_MS = 250  # no message for this long after a run's messages: the run is over


def outside_requests(context, url):
    """A list that fills with every request the context's pages make anywhere but the app at url."""
    origin = f"{urllib.parse.urlsplit(url).scheme}://{urllib.parse.urlsplit(url).netloc}"
    found = []

    def check(request):
        address = request.url
        inline = address.startswith(("data:", f"blob:{origin}/"))  # made in the page itself: no request leaves it
        if not inline and not (address == origin or address.startswith(f"{origin}/")):
            found.append(address)

    context.on("request", check)
    return found


def open_app(context, url):
    """A new page showing the app, once the canvas is on screen."""
    page = context.new_page()
    page.add_init_script(WATCH_SOCKET_SCRIPT)
    page.goto(url)
    page.locator(CANVAS).wait_for(state="visible", timeout=60_000)
    wait_for_canvas(page)
    wait_until_quiet(page)
    return page


def wait_for_canvas(page, timeout=30):
    """Wait until a new canvas has loaded its empty drawing; strokes made before that are wiped by the load.

    Fabric.js paints the white paper when the load ends, so the first pixel turns opaque.
    """
    deadline = time.monotonic() + timeout
    fresh_canvas = page.locator(f"{INK_CANVAS}:not([data-replaced])")
    while time.monotonic() < deadline:
        if fresh_canvas.count() == 1 and fresh_canvas.evaluate(
            "canvas => canvas.getContext('2d').getImageData(0, 0, 1, 1).data[3] === 255"
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the canvas was not ready within {timeout} s")


def replacing_canvas(page, action):
    """Do action, which replaces the canvas with a new one, and wait until the new one is ready."""
    page.locator(INK_CANVAS).evaluate("canvas => canvas.setAttribute('data-replaced', '')")
    after_rerun(page, action)
    wait_for_canvas(page)


def clear(page):
    """Press Clear and wait for the new, empty canvas."""
    replacing_canvas(page, lambda: page.locator(".st-key-clear button").click())


def wait_until_quiet(page, sent_before=0, timeout=30_000):
    """Wait until the page has sent something since sent_before, the server has answered the last of it,
    and nothing has come for a while."""
    page.wait_for_function(
        f"""() => window.appSent > {sent_before}
                  && window.appLastMessageAt > window.appLastSentAt
                  && performance.now() - window.appLastMessageAt > {QUIET_MS}
                  && {APP_NOT_RUNNING}""",
        timeout=timeout,
    )


def after_rerun(page, action, send_delay_ms=0):
    """Do action, then wait until the app runs it causes have finished.

    send_delay_ms: how long the page may take to send the change (the canvas waits before it sends).
    """
    sent_before = page.evaluate("window.appSent")
    action()
    page.wait_for_timeout(send_delay_ms)
    wait_until_quiet(page, sent_before)


def stroke_points(vertices):
    """Evenly spaced points along a polyline, so that the pointer moves like a hand does."""
    points = [vertices[0]]
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:]):
        steps = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / POINT_SPACING))
        points += [(x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps) for step in range(1, steps + 1)]
    return points


def canvas_origin(page):
    """The canvas's top-left corner on the page, and screen pixels per canvas pixel (the app zooms it to fit)."""
    box = page.locator(CANVAS).bounding_box()
    width = page.locator(CANVAS).evaluate("canvas => canvas.width")
    return box["x"], box["y"], box["width"] / width


def draw_with_mouse(page, strokes):
    """Draw strokes (canvas coordinates) with mouse down, moves and up; waits for the app's rerun."""
    after_rerun(page, lambda: mouse_strokes(page, strokes, *canvas_origin(page)), SEND_DELAY_MS)


def mouse_strokes(page, strokes, left, top, scale=1):
    """Mouse strokes in canvas coordinates, scaled by scale and offset by (left, top) on the page."""
    for stroke in strokes:
        points = [(left + x * scale, top + y * scale) for x, y in stroke_points(stroke)]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def touch(page, strokes, left, top, scale=1):
    """Finger strokes, scaled by scale and offset by (left, top): touch events through the browser's input pipeline."""
    devtools = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [{"x": left + x * scale, "y": top + y * scale} for x, y in stroke_points(stroke)]
        devtools.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:1]})
        for point in points[1:]:
            devtools.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        devtools.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    devtools.detach()


def draw_with_touch(page, strokes):
    """Draw strokes (canvas coordinates) with a finger; waits for the app's rerun."""
    after_rerun(page, lambda: touch(page, strokes, *canvas_origin(page)), SEND_DELAY_MS)


def ink_pixels(page):
    """How many dark pixels the canvas shows."""
    return page.locator(INK_CANVAS).evaluate(INK_PIXELS)


def click_and_wait(page, selector):
    """Click the button inside the element with this CSS selector and wait for the app's rerun."""
    after_rerun(page, lambda: page.locator(f"{selector} button").click())


def upload_input(page):
    """The Upload tab's file input (the sidebar may hold another)."""
    return page.locator('[data-testid="stMain"] [data-testid="stFileUploader"] input[type=file]')


def answer_selector(key="drawing"):
    """The CSS selector of a result view's large recognised text (for scripts run in the page too)."""
    return f".st-key-answer_{key} [data-testid='stMetricValue']"


def answer_locator(page, key="drawing"):
    """The large recognised text of a result view."""
    return page.locator(answer_selector(key))


# Pictures with a known answer: MNIST test digits drawn as black ink on white paper.
def mnist_test_set(mnist_dir):
    """MNIST's 10,000 test images (uint8, white on black) and their labels."""
    images = datasets.read_idx_images(Path(mnist_dir) / datasets.FILES["test_images"])
    labels = datasets.read_idx_labels(Path(mnist_dir) / datasets.FILES["test_labels"])
    return images, labels


def paper_picture(digits, scale=10):
    """RGBA picture of 28x28 MNIST digits side by side, enlarged, as black ink on white paper."""
    row = np.concatenate(list(digits), axis=1)
    enlarged = cv2.resize(row, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    grey = 255 - enlarged
    return np.dstack([grey, grey, grey, np.full_like(grey, 255)])


def png_bytes(rgba):
    """PNG file bytes of an RGBA uint8 array."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("OpenCV could not encode the picture as PNG")
    return encoded.tobytes()


def readable_digit(recognizer, images, labels, label):
    """The first MNIST test image of label that the model reads right and sure from its paper picture."""
    for index in np.flatnonzero(labels == label):
        recognition = recognizer.recognize(paper_picture([images[index]]))
        if recognition.text == str(label) and recognition.status == "ok":
            return images[index]
    raise LookupError(f"the model reads no MNIST test {label} right: is it trained?")
