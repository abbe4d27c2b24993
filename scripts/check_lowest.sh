#!/usr/bin/env bash
# The lowest supported stack: sentence-transformers 5.7 on transformers 4.57, installed first into a
# fresh virtual environment, then the harness as the README installs it; runs the test suite there.
#
#   scripts/check_lowest.sh                 # venv in .venv-lowest, the whole suite
#   scripts/check_lowest.sh /tmp/low -k encode
#
# TORCH (default torch==2.13.0, the CPU build on this project's machines) is installed first, as the
# README says. Needs $HARNESS_DATA_DIR (or ../shared/data) like the suite itself.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-lowest}"
shift || true
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q "${TORCH:-torch==2.13.0}"
"$py" -m pip install -q "sentence-transformers[train]==5.7.0" "transformers==4.57.6"
"$py" -m pip install -q -e ".[test]"
"$py" - <<'PY'
from importlib.metadata import version
st, tf = version("sentence-transformers"), version("transformers")
print(f"sentence-transformers {st}, transformers {tf}, torch {version('torch')}")
assert st.startswith("5.7") and tf.startswith("4.57"), "pip moved the pinned stack"
PY
"$py" -m pip check
export HARNESS_DATA_DIR="${HARNESS_DATA_DIR:-$(cd .. && pwd)/shared/data}" HF_HUB_OFFLINE=1
"$py" -m pytest -q -p no:cacheprovider "$@"
