"""Every command-line entry point answers --help with its usage, not a traceback."""

import pytest

from conftest import run_script

COMMANDS = [
    ("train.py",),
    ("train_online.py",),
    ("predict.py",),
    ("export.py",),
    ("deploy/serve.py",),
    *[
        ("-m", f"benchmarks.{name}")
        for name in (
            "abuse",
            "benchmark",
            "cli_memory",
            "comparison",
            "devset",
            "load",
            "online",
            "personalisation",
            "profiles",
            "saliency",
            "ui_speed",
        )
    ],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[-1])
def test_help_prints_usage_and_exits_cleanly(command):
    completed = run_script(*command, "--help")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage:") and "--help" in completed.stdout
    assert "Traceback" not in completed.stderr
