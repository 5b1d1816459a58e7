"""Twenty users at once, on one app server and through nginx in front of two replicas: no errors,
each sees only their own answer, memory stays flat.

Slow (about two minutes each): after the sessions have opened and drawn, each presses Predict
again and again for LOAD_SECONDS (default 60). The click-to-answer times are printed
(pytest -s) and written to a temporary folder; `python -m benchmarks.load` writes
benchmarks/results/load.md (and with --replicas 2, load_nginx.md).
"""

import asyncio
import os

import pytest

from browser import CHROMIUM, AppServer, Deployment, model_under_test
from test_deploy import NGINX_PARTS

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}: apt-get install -y chromium"
    ),
]
pytest.importorskip("playwright.async_api")
from benchmarks import load  # noqa: E402  (needs Playwright)

SESSIONS = 20
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", load.LOAD_SECONDS))
# Over the run (medians of its last and its second 10 s): keeping every prediction's 627 kB drawing
# would pass it after 240 predictions; 20 sessions make 300 to 400 a minute here.
MEMORY_GROWTH_LIMIT_MB = 150
MIN_PREDICTIONS = 3  # per session: fewer, and the run shows little


@pytest.mark.parametrize("replicas", [0, 2], ids=["one server", "nginx and 2 replicas"])
def test_twenty_users_at_once_each_see_only_their_own_answer(model_path, tmp_path, replicas):
    environment = {"DIGIT_MODEL": str(model_under_test(model_path))}
    if replicas and not all(path.exists() for path in NGINX_PARTS):
        pytest.skip("needs Debian's nginx: apt-get install nginx libnginx-mod-stream libnginx-mod-stream-js")
    server = Deployment(tmp_path / "deploy", replicas, environment) if replicas else AppServer(environment)
    with server:
        summary = asyncio.run(
            load.run_load(server.url, server.process.pid, SESSIONS, LOAD_SECONDS, separate_clients=bool(replicas))
        )
    summary["front"] = load.front(replicas)
    load.write_results(summary, tmp_path / "results")
    print("\n" + load.markdown(summary))
    sessions = summary["per_session"]
    assert len({session["number"] for session in sessions}) == SESSIONS
    assert {session["number"]: session["page_errors"] for session in sessions if session["page_errors"]} == {}
    assert {session["number"]: session["wrong_answers"] for session in sessions if session["wrong_answers"]} == {}
    assert min(session["predictions"] for session in sessions) >= MIN_PREDICTIONS
    assert summary["server_rss_mb"]["growth"] <= MEMORY_GROWTH_LIMIT_MB, summary["server_rss_mb"]
