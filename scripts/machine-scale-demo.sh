#!/bin/bash
# Audits at scale on the demo model, from the command line (issue 25): 600 generated images, machine
# labels for all (CLIP and skin pixels), a 120-image human sample written as a sheet, filled in (by a
# SIMULATED rater: the demo images are noise) and imported, then prediction-powered shares and the
# machine audited. Run from a checkout: `bash scripts/machine-scale-demo.sh [EMPTY_FOLDER]` (one to two minutes on 2 cores).
set -euo pipefail
export HF_HUB_OFFLINE=1 PYTHONPATH=$PWD
W=${1:-$(mktemp -d /tmp/sdaudit-scale-XXXXXX)}  # a new or empty folder for the models, the data home and the sheet
if [ -e "$W" ] && [ -n "$(ls -A "$W")" ]; then echo "error: $W is not empty; give a new or empty folder." >&2; exit 2; fi
mkdir -p "$W"; export SDAUDIT_HOME=$W/home; echo "working in $W"
say() { echo; echo "\$ $*"; "$@"; }
start=$(date +%s)
say python -m sdaudit demo-model "$W/demo-sd"
say python -m sdaudit generate --model "$W/demo-sd" --seeds 0-599 --steps 2 --height 64 --width 64 --batch-size 25 --study scale 2>/dev/null
say python -m sdaudit demo-clip "$W/demo-clip"
say python -m sdaudit machine-label --study scale --labeller clip --model "$W/demo-clip" --batch-size 50 2>/dev/null
say python -m sdaudit machine-label --study scale --labeller skin-pixels 2>/dev/null
say python -m sdaudit team --study scale --human-sample 120 --seed 2026
say python -m sdaudit team --study scale --human-sample-sheet "$W/sample.csv"
echo; echo "# The demo model's images are noise, so nobody can label them: the people's answers below are"
echo "# SIMULATED (one rater 'sim', 30% female-presenting, MST drawn 1-10 with 20% darker), written into"
echo "# the sample sheet and read back as a person's sheet would be."
python - "$W/sample.csv" <<'PY'
import sys, numpy as np, pandas as pd
path = sys.argv[1]
sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
print("sheet columns:", ", ".join(sheet.columns), f"({len(sheet)} rows)")
rng = np.random.default_rng(7)
n = len(sheet)
sheet["rater"] = "sim"
sheet["person_present"] = "true"
sheet["gender"] = np.where(rng.random(n) < 0.3, "female", "male")
sheet["mst"] = np.where(rng.random(n) < 0.2, rng.integers(6, 11, n), rng.integers(1, 6, n)).astype(str)
sheet["confidence"] = "high"
sheet.to_csv(path, index=False)
PY
say python -m sdaudit import-annotations "$W/sample.csv" --study scale --format sdaudit
say python -m sdaudit team --study scale
say python -m sdaudit estimate --study scale --labels machine+human --json
say python -m sdaudit estimate --study scale --labels machine+human
say python -m sdaudit machine-audit --study scale
echo; echo "\$ python -m sdaudit machine-audit --study scale --json > $W/machine-audit.json  (every number; its parts:)"
python -m sdaudit machine-audit --study scale --json > "$W/machine-audit.json"
python -c "import json, sys; d = json.load(open(sys.argv[1])); print({k: (len(v) if isinstance(v, list) else v) for k, v in d.items() if not isinstance(v, dict)})" "$W/machine-audit.json"
echo; echo "whole session: $(( $(date +%s) - start )) s"
