#!/usr/bin/env bash
# regmix installed as a user would get it: a wheel built from this checkout, installed (not
# editable) into a fresh venv, run from an empty directory. Not part of `make test` (it builds a
# venv and installs from PyPI: minutes); run it by hand after changing packaging or configs:
#
#     bash tests/wheel_install_check.sh          # prints each step; exits non-zero on the first failure
#
# Steps: regmix-prepare, regmix-sample sweep=w n_mixtures=4, a 4-run multirun, regmix-fit
# source=local sweep=w, then regmix-train mixture=<emitted> composes the emitted file from
# ./conf/mixture of that directory. TORCH_SPEC picks torch (the CPU wheel by default).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/regmix-wheel-XXXXXX")
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PY=${PYTHON:-python3}
echo "== work folder $WORK"

echo "== build the wheel from a copy of the checkout (tracked and new files, no build litter in the repo)"
mkdir -p "$WORK/src"
git -C "$REPO" ls-files -co --exclude-standard -z | (cd "$REPO" && xargs -0 tar -cf - --) | tar -C "$WORK/src" -xf -
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/pip" install -q --upgrade pip
"$V/pip" install -q "$TORCH_SPEC"
"$V/pip" wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/regmix-*.whl)
echo "wheel: $WHEEL ($(unzip -l "$WHEEL" | grep -c 'regmix/conf/.*\.yaml') config files inside)"
"$V/pip" install -q "$WHEEL"
cd "$WORK"  # not the checkout: `import regmix` must find the installed copy
"$V/python" - <<'PY'
import regmix, regmix.conf
assert "site-packages" in regmix.__file__, regmix.__file__  # the installed copy, not the checkout
print("installed at", regmix.__file__)
PY

echo "== run from an empty directory"
mkdir "$WORK/empty" && cd "$WORK/empty"
export WANDB_MODE=offline WANDB_SILENT=true WANDB_DIR="$WORK/wandb" WANDB_DATA_DIR="$WORK/wandb/data" \
       WANDB_CACHE_DIR="$WORK/wandb/cache" WANDB_CONFIG_DIR="$WORK/wandb/config"
QUICK=(train.tokens=20480 eval.tokens_per_domain=4096)
"$V/regmix-prepare"
"$V/regmix-sample" sweep=w n_mixtures=4
"$V/regmix-train" -m sweep=w 'mixture.index=range(0,4)' "${QUICK[@]}"
"$V/regmix-fit" source=local sweep=w target=web_blend out=w_emitted simulation.n_candidates=20000 plots=false
test -f conf/mixture/w_emitted.yaml
"$V/regmix-train" mixture=w_emitted sweep=target "${QUICK[@]}"
"$V/python" - <<'PY'
import json
record = json.load(open("runs/target/w_emitted/result.json"))
assert record["status"] == "finished", record["status"]
print("target run on the emitted mixture:", record["status"], {d: round(w, 3) for d, w in record["mixture"].items()})
PY
echo "== files the commands left in $WORK/empty:"
find . -maxdepth 2 -not -path './runs/*/*' | sort | head -40
echo "OK: wheel install runs the loop from an empty directory ($WORK)"
