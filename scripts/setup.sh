#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with graphc and its test extra, and
# Graphviz's `dot` from the system packages when it is missing (installed when we are root).
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating the virtual environment .venv"
    "$python_bin" -m venv .venv
fi

stamp=.venv/.graphc-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing graphc and its test extra into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[test]"
    echo "$want" > "$stamp"
fi

if ! command -v dot >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Graphviz (dot) from the system packages"
        (apt-get install -y -q graphviz >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q graphviz >/dev/null; }) ||
            echo "setup: could not install Graphviz; drawings other than .dot need it: apt-get install graphviz" >&2
    else
        echo "setup: Graphviz's dot is missing; install it to draw SVG/PNG/PDF: sudo apt-get install graphviz (or brew install graphviz)" >&2
    fi
fi

# Headless Chromium drives the explorer's browser tests (Playwright uses the system's
# Chromium; it never downloads a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Chromium from the system packages (for the explorer's browser tests)"
        (apt-get install -y -q chromium >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }) ||
            echo "setup: could not install Chromium; the explorer's browser tests will be skipped: apt-get install chromium" >&2
    else
        echo "setup: Chromium is missing; the explorer's browser tests will be skipped: sudo apt-get install chromium" >&2
    fi
fi
