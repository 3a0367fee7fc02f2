#!/usr/bin/env bash
# Install pymesos 0.3.15 (the last release) into a virtual environment on Python 3.11 and later.
#
# Why a script: pymesos needs http-parser, whose only release (0.9.0) is an sdist that builds a
# C extension against CPython internals gone since 3.11 (longintrepr.h), so `pip install
# pymesos` fails there. The package ships a pure-Python parser too, and its setup.py builds
# without the extension when run_setup(False) is called; pymesos uses whichever is present.
# This script downloads the sdist, makes that one-word change, and installs it, then pymesos.
# Nothing of either package is kept in this repository.
#
# Usage: .ci/install-pymesos.sh [PYTHON]   (default .venv/bin/python); does nothing when both
# are installed already. The tests in tests/integration/scheduler_http run pymesos schedulers.
set -euo pipefail

PYTHON="${1:-.venv/bin/python}"
PYMESOS_VERSION=0.3.15
HTTP_PARSER_VERSION=0.9.0

if "$PYTHON" - "$PYMESOS_VERSION" <<'PY' 2>/dev/null; then
import sys
from importlib import metadata

import http_parser.http  # noqa: F401  (the pure-Python parser imports)

sys.exit(0 if metadata.version("pymesos") == sys.argv[1] else 1)
PY
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" \
    "http-parser==$HTTP_PARSER_VERSION"
tar -xzf "$work/http-parser-$HTTP_PARSER_VERSION.tar.gz" -C "$work"
setup="$work/http-parser-$HTTP_PARSER_VERSION/setup.py"
grep -q 'run_setup(not IS_PYPY)' "$setup" || {
    echo "install-pymesos: $setup does not call run_setup(not IS_PYPY); cannot build it pure" >&2
    exit 1
}
sed -i 's/run_setup(not IS_PYPY)/run_setup(False)/' "$setup"
"$PYTHON" -m pip install --quiet "$work/http-parser-$HTTP_PARSER_VERSION"
"$PYTHON" -m pip install --quiet "pymesos==$PYMESOS_VERSION"
"$PYTHON" -c 'import pymesos, http_parser.http; print("pymesos", pymesos.__VERSION__, "installed")'
