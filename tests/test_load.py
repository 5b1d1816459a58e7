"""Twenty users at once on one app server: no errors, each sees only their own answer, memory stays flat.

Slow (about two minutes): after the sessions have opened and drawn, each presses Predict
again and again for LOAD_SECONDS (default 60). The click-to-answer times are printed
(pytest -s) and written to benchmarks/results/load.md and load.json.
"""

import asyncio
import os

import pytest

from browser import CHROMIUM, AppServer, model_under_test

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"needs Debian's Chromium at {CHROMIUM}: apt-get install -y chromium"),
]
pytest.importorskip("playwright.async_api")
from benchmarks import load  # noqa: E402  (needs Playwright)

SESSIONS = 20
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", load.LOAD_SECONDS))
# Over the run (medians of its last and first 10 s): keeping every prediction's 627 kB drawing
# would pass it after 240 predictions; 20 sessions make 300 to 400 a minute here.
MEMORY_GROWTH_LIMIT_MB = 150
MIN_PREDICTIONS = 3  # per session: fewer, and the run shows little


def test_twenty_users_at_once_each_see_only_their_own_answer(model_path):
    with AppServer({"DIGIT_MODEL": str(model_under_test(model_path))}) as server:
        summary = asyncio.run(load.run_load(server.url, server.process.pid, SESSIONS, LOAD_SECONDS))
    load.write_results(summary)
    print("\n" + load.markdown(summary))
    sessions = summary["per_session"]
    assert len({session["number"] for session in sessions}) == SESSIONS
    assert {session["number"]: session["page_errors"] for session in sessions if session["page_errors"]} == {}
    assert {session["number"]: session["wrong_answers"] for session in sessions if session["wrong_answers"]} == {}
    assert min(session["predictions"] for session in sessions) >= MIN_PREDICTIONS
    assert summary["server_rss_mb"]["growth"] <= MEMORY_GROWTH_LIMIT_MB, summary["server_rss_mb"]
