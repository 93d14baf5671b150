#!/usr/bin/env bash
# A Python virtual environment for one framework's test agents, made from PyPI and cached outside the repository.
#
#   test/agents/python/venv.sh <framework>   create (or reuse) the venv of test/agents/python/<framework>/requirements.txt
#                                            and print the path of its python
#
# The cache key is the requirements file's content, so changing a pin makes a new venv. Environment:
#   TRIPLINE_PYTHON     the interpreter to build venvs from (default python3; 3.10 or newer)
#   TRIPLINE_VENV_CACHE where venvs are kept (default ~/.cache/tripline/venvs)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
framework=${1:?usage: venv.sh <framework>}
requirements="$HERE/$framework/requirements.txt"
[[ -f "$requirements" ]] || { echo "venv.sh: no $requirements" >&2; exit 2; }

python=${TRIPLINE_PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || { echo "venv.sh: $python not found; install Python 3.10+ (Debian: apt-get install python3 python3-venv) or set TRIPLINE_PYTHON" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || { echo "venv.sh: $python is older than 3.10" >&2; exit 1; }

key=$( (cat "$requirements"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
cache=${TRIPLINE_VENV_CACHE:-$HOME/.cache/tripline/venvs}
venv="$cache/$framework-$key"

if [[ ! -x "$venv/bin/python" || ! -f "$venv/.complete" ]]; then
  rm -rf "$venv"
  mkdir -p "$cache"
  echo "venv.sh: creating $venv from $requirements" >&2
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
