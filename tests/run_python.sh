#!/bin/sh
# Runs one Python cross-check under `make check`.  The interpreter is $PYTHON
# (configure's, normally the project venv made by scripts/deps.sh); without
# numpy and ml_dtypes the test is skipped (exit 77), except when
# MXV_REQUIRE_PYTHON=1 (set by scripts/test.sh and CI), where it fails.
# usage: run_python.sh SCRIPT [ARGS...]
script=$1
shift
py=${PYTHON:-python3}
if ! "$py" -c 'import numpy, ml_dtypes' >/dev/null 2>&1; then
    if [ "${MXV_REQUIRE_PYTHON:-0}" = 1 ]; then
        echo "error: $py lacks numpy/ml_dtypes (run scripts/deps.sh)" >&2
        exit 1
    fi
    echo "SKIP: $py lacks numpy/ml_dtypes"
    exit 77
fi
exec "$py" "$script" "$@"
