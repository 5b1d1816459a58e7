"""The deployment as `./run.sh serve 2` starts it: nginx in front of two replicas, and a flood from one client.

On Linux every 127.x.y.z address is the loopback interface, and nginx tells them apart:
a flooding client binds to 127.0.0.2 or a neighbour (one that nginx sends to the same
replica as 127.0.0.1, the worst case), while the other client, 127.0.0.1, asks for health
checks and, in Chromium, draws a 7 and presses Predict. The limits are checked against
nginx's own answers and logs. Timings here only have to show that the answers come; the
figures against the targets are measured by `python -m benchmarks.abuse`.
"""

import http.client
import re
import statistics
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import tomllib

from browser import (
    CHROMIUM,
    ROOT,
    SEVEN,
    Deployment,
    after_rerun,
    answer_locator,
    click_and_wait,
    draw_with_mouse,
    launch_chromium,
    model_under_test,
    open_app,
    upload_input,
)
from hostile import Flood, open_app_websocket, rerun_message, websocket_frame

NGINX_PARTS = [
    Path("/usr/sbin/nginx"),
    Path("/usr/lib/nginx/modules/ngx_stream_module.so"),
    Path("/usr/lib/nginx/modules/ngx_stream_js_module.so"),
]
pytestmark = pytest.mark.skipif(
    not all(path.exists() for path in NGINX_PARTS),
    reason="needs Debian's nginx: apt-get install nginx libnginx-mod-stream "
    "libnginx-mod-stream-js (./run.sh test does)",
)
DESKTOP = {"width": 1280, "height": 900}
CANDIDATE_FLOODERS = [f"127.0.0.{number}" for number in range(2, 40)]
FLOOD_SECONDS = 12
# Bounds that only a working defence meets, with room for a busy 2-core machine: unprotected,
# the issue measured 13-38 s and lost clicks, health checks of 5-10 s, and here no answer in 30 s.
ANSWER_LIMIT = 15  # seconds for any click's answer
HEALTH_LIMIT = 10  # seconds for any health check during the flood


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, model_path):
    state = tmp_path_factory.mktemp("deploy")
    with Deployment(state, replicas=2, environment={"DIGIT_MODEL": str(model_under_test(model_path))}) as running:
        yield running


@pytest.fixture(scope="module")
def flooder(deployment):
    """A client address that nginx sends to the same replica as 127.0.0.1."""
    victim = deployment.replica_of("127.0.0.1")
    return next(address for address in CANDIDATE_FLOODERS if deployment.replica_of(address) == victim)


def get(deployment, path="/_stcore/health", source_address="127.0.0.1"):
    """(status, body) of one GET from source_address."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", deployment.port, timeout=30, source_address=(source_address, 0)
    )
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def upload_limit_mb():
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


def logged_requests(deployment, text):
    """Lines of nginx's access log with text in them; nginx writes each as its request ends, so wait a little."""
    for _ in range(50):
        lines = [line for line in (deployment.state_dir / "access.log").read_text().splitlines() if text in line]
        if lines:
            return lines
        time.sleep(0.02)
    return []


def test_the_configuration_is_nginx_s_own_files_in_the_state_folder(deployment):
    config = (deployment.state_dir / "nginx.conf").read_text()
    assert not re.findall(r"@[A-Z_]+@", config)  # every value filled in
    assert f"pid {deployment.state_dir}/nginx.pid;" in config
    assert (deployment.state_dir / "nginx.pid").read_text().strip().isdigit()
    directives = "\n".join(line.split("#")[0] for line in config.splitlines())
    assert "/etc/nginx" not in directives and "/var/log" not in directives
    assert re.findall(r"_temp_path (\S+);", directives) and all(
        path.startswith(str(deployment.state_dir)) for path in re.findall(r"_temp_path (\S+);", directives)
    )


def test_health_check_and_page_through_nginx(deployment):
    with urllib.request.urlopen(f"{deployment.url}/_stcore/health", timeout=30) as response:
        assert response.read() == b"ok"
    with urllib.request.urlopen(deployment.url, timeout=30) as response:
        assert b"<title>" in response.read()


def test_each_client_sticks_to_one_replica_and_clients_spread_over_both(deployment):
    addresses = CANDIDATE_FLOODERS[:16]
    first = {address: deployment.replica_of(address) for address in addresses}
    assert len(set(first.values())) == 2, first  # both replicas serve someone
    assert {address: deployment.replica_of(address) for address in addresses} == first


def test_an_upload_over_the_apps_own_limit_is_refused_by_nginx_from_its_header(deployment):
    connection = http.client.HTTPConnection("127.0.0.1", deployment.port, timeout=30)
    connection.putrequest("PUT", "/_stcore/upload_file/no-such-session/no-such-file")
    connection.putheader("Content-Length", str((upload_limit_mb() + 2) * 2**20))
    connection.endheaders()  # the body is never sent
    assert connection.getresponse().status == 413
    assert logged_requests(deployment, "no-such-session")[-1].endswith("upstream=-")  # no replica saw it


def test_an_upload_near_the_apps_limit_passes_nginx_and_gets_the_apps_own_answer(deployment, chromium, tmp_path):
    big = tmp_path / "scan.png"
    big.write_bytes(b"not a picture\n" * ((upload_limit_mb() - 2) * 2**20 // 14))  # just under the app's limit
    page = open_app(chromium.new_context(viewport=DESKTOP), deployment.url)
    page.get_by_role("tab", name="Upload").click()
    file_input = upload_input(page)
    after_rerun(page, lambda: file_input.set_input_files(big))
    assert (
        "scan.png: not an image: looks like a text file"
        in page.locator('[data-testid="stAlertContentError"]').inner_text()
    )
    page.context.close()
    uploads = [line for line in logged_requests(deployment, '"PUT /_stcore/upload_file/') if "no-such" not in line]
    assert uploads and re.search(r"\" 20[04] ", uploads[-1]) and not uploads[-1].endswith("upstream=-"), uploads


def test_one_client_gets_429s_for_a_flood_of_requests_while_another_gets_answers(deployment, flooder):
    with Flood("127.0.0.1", deployment.port, flooder, http_threads=8, websockets=0) as flood:
        time.sleep(3)
        status, body = get(deployment)
    assert (status, body) == (200, b"ok")
    assert flood.statuses.get(429, 0) > 10 * flood.statuses.get(200, 0), flood.statuses


def test_messages_over_a_persons_pace_never_reach_the_app(deployment):
    """One WebSocket sends 5,000 reruns at once: nginx passes the burst allowance and drops the rest."""
    connection = open_app_websocket("127.0.0.1", deployment.port, "127.0.0.1")
    connection.sendall(websocket_frame(rerun_message()) * 5000)
    time.sleep(1)
    connection.close()
    for _ in range(50):
        log = (deployment.state_dir / "error.log").read_text()
        if "messages dropped on one WebSocket" in log:
            break
        time.sleep(0.1)
    assert "websocket_limit: 1 messages dropped on one WebSocket" in log


def test_under_a_flood_from_one_client_another_still_gets_its_health_checks_and_answers(deployment, flooder, chromium):
    health_seconds, health_failures, stop = [], [], threading.Event()

    def check_health():
        while not stop.is_set():
            started = time.perf_counter()
            answer = get(deployment)
            health_seconds.append(time.perf_counter() - started)
            if answer != (200, b"ok"):
                health_failures.append(answer)
            stop.wait(0.25)

    page = open_app(chromium.new_context(viewport=DESKTOP), deployment.url)
    draw_with_mouse(page, SEVEN)
    checker = threading.Thread(target=check_health, daemon=True)
    with Flood("127.0.0.1", deployment.port, flooder) as flood:
        checker.start()
        answers, until = [], time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < until:
            started = time.perf_counter()
            click_and_wait(page, ".st-key-predict")
            answers.append((answer_locator(page).inner_text(), time.perf_counter() - started))
        stop.set()
        checker.join()
    page.context.close()
    print(
        f"\nflood from {flooder}: {flood.messages_sent:,} WebSocket messages written, HTTP {flood.statuses}; "
        f"answers in {[round(seconds, 2) for _, seconds in answers]} s; health checks median "
        f"{statistics.median(health_seconds):.3f} s, max {max(health_seconds):.3f} s"
    )
    assert [text for text, _ in answers] == ["7"] * len(answers) and len(answers) >= 3
    assert max(seconds for _, seconds in answers) < ANSWER_LIMIT
    assert health_failures == [] and max(health_seconds) < HEALTH_LIMIT
    assert flood.messages_sent > 10_000 and flood.statuses.get(429, 0) > 100  # it was a flood
