#!/usr/bin/env bash
# Retrain on a schedule, but only when production has drifted, and release only a better model.
#
#   examples/retrain/retrain_on_drift.sh ARTIFACT QUERIES SUITE OUT
#
# ARTIFACT  the release in production (a folder written by `harness release`)
# QUERIES   recent production queries (a table with a 'query' column, or the `harness ab` logs)
# SUITE     the retraining suite (the production suite's name): its data the new clicks (source "clicks", file = the impression
#           logs), and a threshold with against = "compare", so the new candidate must beat the
#           production model on the new test split
# OUT       a folder for drift.json, the run and the new release
#
# Exit 0: no drift, or a better model was released to OUT/release; 1: drifted, but no candidate beat
# production (nothing released); 4: bad input. Run it from cron, e.g. every Monday at 03:00:
#   0 3 * * 1  cd /srv/search && examples/retrain/retrain_on_drift.sh prod/artifact logs/week.jsonl \
#              suites/retrain.toml runs/$(date +\%F) >> runs/retrain.log 2>&1
# or from a scheduled CI job (docs/after-shipping.md has a GitHub Actions one).
set -uo pipefail
ARTIFACT=$1 QUERIES=$2 SUITE=$3 OUT=$4
HARNESS=${HARNESS:-harness}
mkdir -p "$OUT"

$HARNESS drift "$ARTIFACT" --queries "$QUERIES" --json "$OUT/drift.json"
rc=$?
if [ $rc -eq 0 ]; then echo "no drift: the release stays"; exit 0; fi
if [ $rc -ne 1 ]; then exit $rc; fi

# the production model's run: its shipped model becomes the "compare" reference of the new run
PROD_RUN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_dir"])' \
  "$ARTIFACT/harness-artifact.json")
$HARNESS run "$SUITE" --out "$OUT/reports" --compare "$PROD_RUN" -q
rc=$?
if [ $rc -eq 1 ]; then
  echo "drifted, but no candidate passed its gates against production: nothing released"
  exit 1
fi
if [ $rc -ne 0 ]; then exit $rc; fi
NEW_RUN=$(ls -d "$OUT"/reports/*/latest | head -1)
$HARNESS report "$NEW_RUN" --drift "$OUT/drift.json" >/dev/null   # why it retrained, in its report
$HARNESS release "$NEW_RUN" --to "$OUT/release"
