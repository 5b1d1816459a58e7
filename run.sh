#!/usr/bin/env bash
# Set up everything on a fresh machine and run the app or the tests.
#
#   ./run.sh app     # virtual environment + packages, then the app on http://localhost:8501
#   ./run.sh test    # the same plus Chromium for the browser tests, then the whole test suite
#
# MNIST is read from $MNIST_DIR, default ../shared/data/mnist beside this folder.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

usage() { echo "usage: ./run.sh app|test [extra arguments for streamlit or pytest]" >&2; exit 2; }

ensure_venv() {
    # $1: the requirements file; reinstalls only when it changed since the last install.
    local requirements=$1 stamp="$VENV/.installed-$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), sys.version' 2>/dev/null \
            || { echo "error: needs Python 3.10-3.12 as \$PYTHON (found: $("$PYTHON" --version 2>&1))" >&2; exit 1; }
        "$PYTHON" -m venv "$VENV"
    fi
    if ! cmp -s "$requirements" "$stamp" || ! cmp -s requirements.txt "$VENV/.installed-runtime"; then
        echo "installing $requirements into $VENV ..."
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -r "$requirements"
        cp "$requirements" "$stamp"
        cp requirements.txt "$VENV/.installed-runtime"
    fi
}

ensure_chromium() {
    # The browser tests drive Debian's Chromium through Playwright; Playwright's own download is not used.
    if [ -x /usr/bin/chromium ]; then return; fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian's chromium for the browser tests ..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    app)
        ensure_venv requirements.txt
        exec "$VENV/bin/python" -m streamlit run app.py "$@"
        ;;
    test)
        ensure_venv requirements-dev.txt
        ensure_chromium
        export MNIST_DIR=${MNIST_DIR:-$(cd .. && pwd)/shared/data/mnist}
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *) usage ;;
esac
