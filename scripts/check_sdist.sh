#!/usr/bin/env bash
# Packaging check (run by .ci/run; ~1 minute, needs PyPI for the isolated build and the dependencies):
#   1. `python -m build --sdist` from this checkout;
#   2. the sdist ships exchange/**/*.pyx + the *.h beside them, tests/, docs/, LICENSE, and no generated .c or
#      *.so;
#   3. `pip install <sdist>` into a fresh venv under /tmp builds a platform wheel (not py3-none-any) whose
#      exchange.orders._matching / exchange.clearing._sweep import, with exchange.IMPLEMENTATION == "cython",
#      and which carries no .pyx / .h / .c;
#   4. the installed `exchange-sim` entry point runs.
# Usage: scripts/check_sdist.sh [--keep]   (--keep leaves the work directory for inspection)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
unset EXCHANGE_PUREPYTHON EXCHANGE_EXT  # this checks the compiled build

work=$(mktemp -d /tmp/exchange-sdist-check.XXXXXX)
if [[ "${1:-}" == "--keep" ]]; then echo "work directory: $work"; else trap 'rm -rf "$work"' EXIT; fi
t0=$SECONDS
step() { echo "-- [$((SECONDS - t0))s] $*"; }

step "build the sdist"
repo=$PWD
# from $work: a build/ directory in the checkout would shadow the `build` package
(cd "$work" && "$PY" -m build --sdist --outdir "$work/dist" "$repo") > "$work/build-sdist.log" 2>&1 ||
    { cat "$work/build-sdist.log"; exit 1; }
sdists=("$work"/dist/exchange-*.tar.gz)
[[ ${#sdists[@]} -eq 1 && -f "${sdists[0]}" ]] || { echo "expected one sdist, got: ${sdists[*]}"; exit 1; }
sdist=${sdists[0]}
echo "   $(basename "$sdist")"

step "check the sdist's contents"
tar -tzf "$sdist" | sed 's|^[^/]*/||' | sort > "$work/contents.txt"
missing=()
shopt -s nullglob
for f in LICENSE README.md pyproject.toml setup.py PKG-INFO exchange/orders/_matching.pyx exchange/clearing/_sweep.pyx \
         exchange/*/*.pyx exchange/*/*.pxd exchange/*/*.h \
         tests/*.py tests/scenarios/*.py docs/*; do
    grep -qxF "$f" "$work/contents.txt" || missing+=("$f")
done
[[ ${#missing[@]} -eq 0 ]] || { echo "sdist lacks: ${missing[*]}"; exit 1; }
if grep -E '\.(c|cpp|so|o|pyc)$' "$work/contents.txt"; then echo "generated files in the sdist (above)"; exit 1; fi
tar -xzOf "$sdist" "$(basename "$sdist" .tar.gz)/PKG-INFO" > "$work/PKG-INFO"
grep -qx 'License-Expression: MIT' "$work/PKG-INFO" || { echo "PKG-INFO: no License-Expression: MIT"; exit 1; }

step "fresh venv, pip install the sdist (compiles the core)"
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$sdist" > "$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }

step "the installed package is the compiled core, from a platform wheel"
cd "$work"  # away from the checkout, so its exchange/ cannot shadow the installed one
"$work/venv/bin/python" - <<'PY'
import importlib.metadata as md
import sys, sysconfig

import exchange, exchange.orders._matching, exchange.clearing._sweep

assert exchange.IMPLEMENTATION == "cython", exchange.IMPLEMENTATION
assert "site-packages" in exchange.orders._matching.__file__, exchange.orders._matching.__file__
dist = md.distribution("exchange")
wheel = dist.read_text("WHEEL")
tags = [line.split(": ", 1)[1] for line in wheel.splitlines() if line.startswith("Tag: ")]
assert "Root-Is-Purelib: false" in wheel, wheel
interp = f"cp{sys.version_info.major}{sys.version_info.minor}"
assert tags and all(t.startswith(f"{interp}-{interp}-") and not t.endswith("-any") for t in tags), tags
assert dist.metadata["License-Expression"] == "MIT", dist.metadata["License-Expression"]
assert any(str(f).endswith("licenses/LICENSE") for f in dist.files), "LICENSE not in the wheel"
sources = [str(f) for f in dist.files if str(f).endswith((".pyx", ".pxd", ".h", ".c"))]
assert not sources, f"sources or generated C in the wheel: {sources}"
print(f"   IMPLEMENTATION = {exchange.IMPLEMENTATION}; wheel tag {', '.join(tags)}; {exchange.orders._matching.__file__}")
PY
"$work/venv/bin/exchange-sim" demo --commands 2000 > "$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
step "packaging check passed"
