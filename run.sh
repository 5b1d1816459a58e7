#!/usr/bin/env bash
# Set up everything on a fresh machine and run the app or the tests.
#
#   ./run.sh app     # virtual environment + the app's packages (requirements.txt, no TensorFlow), then the app
#   ./run.sh test    # everything (requirements-dev.txt: training, export, tests) plus Chromium and nginx, then ruff and the tests
#   ./run.sh serve N # N app processes behind nginx on http://127.0.0.1:8080 (deploy/serve.py --help)
#
# MNIST is read from $MNIST_DIR, default ../shared/data/mnist beside this folder.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

usage() { echo "usage: ./run.sh app|test|serve [extra arguments for streamlit, pytest or deploy/serve.py]" >&2; exit 2; }

requirements_text() {
    # $1 and every requirements file it pulls in with -r: what an install of $1 depends on.
    cat "$1"
    local included
    # grep finds no -r line in the last file of the chain: not an error under pipefail.
    for included in $(sed -n 's/^-r[[:space:]]*//p' "$1"); do requirements_text "$included"; done
}

ensure_venv() {
    # $1: the requirements file (requirements.txt: the app and the command line, no TensorFlow;
    # requirements-dev.txt: training, export and the tests too); reinstalls only when it or a file
    # it includes changed since the last install of it.
    local requirements=$1 stamp="$VENV/.installed-$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), sys.version' 2>/dev/null \
            || { echo "error: needs Python 3.10-3.12 as \$PYTHON (found: $("$PYTHON" --version 2>&1))" >&2; exit 1; }
        "$PYTHON" -m venv "$VENV"
    fi
    if ! requirements_text "$requirements" | cmp -s - "$stamp"; then
        echo "installing $requirements into $VENV ..."
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        # No bytecode at install: Python writes it for the modules actually imported, which keeps
        # the app's install under 700 MB (pip would compile all 94 MB of it up front).
        "$VENV/bin/python" -m pip install --quiet --no-compile -r "$requirements"
        requirements_text "$requirements" > "$stamp"
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

ensure_nginx() {
    # The deployment runs Debian's nginx with its stream and njs modules, as an ordinary process (deploy/serve.py).
    if [ -x /usr/sbin/nginx ] && [ -e /usr/lib/nginx/modules/ngx_stream_js_module.so ]; then return; fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian's nginx for the deployment ..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx libnginx-mod-stream libnginx-mod-stream-js >/dev/null
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
        ensure_nginx
        export MNIST_DIR=${MNIST_DIR:-$(cd .. && pwd)/shared/data/mnist}
        echo "ruff: lint and format (pyproject.toml) ..."
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    serve)
        ensure_venv requirements.txt
        ensure_nginx
        exec "$VENV/bin/python" deploy/serve.py "$@"
        ;;
    *) usage ;;
esac
