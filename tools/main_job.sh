#!/usr/bin/env bash
# The main job on the SyRIP sample (CPU-size configs): Stage0 supervised training on the
# 200 labeled images, then COCO AP on Test100. Re-running resumes training from the last
# checkpoint in the work dir.
#   bash tools/setup_env.sh && bash tools/main_job.sh [WORK_ROOT]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
WORK="${1:-work_dirs/main_job}"
[ -x "$PY" ] || { echo "main_job: run 'bash tools/setup_env.sh' first" >&2; exit 1; }

STAGE0_CFG=configs/nk_sapiens/infant/stage0_supervised_cpu.py
echo "== Stage0: supervised training ($STAGE0_CFG) -> $WORK/stage0"
resume=()
[ -f "$WORK/stage0/last_checkpoint" ] && resume=(--resume)
"$PY" tools/train.py "$STAGE0_CFG" --work-dir "$WORK/stage0" "${resume[@]}"

ckpt="$(cat "$WORK/stage0/last_checkpoint")"
echo "== Stage0: COCO AP on Test100 ($ckpt)"
"$PY" tools/test.py "$STAGE0_CFG" --checkpoint "$ckpt" --work-dir "$WORK/stage0/test" \
  2>&1 | tee "$WORK/stage0/test.log" | grep -E "coco/AP|Average Precision" || true
ap="$(grep -oE 'coco/AP: [0-9.]+' "$WORK/stage0/test.log" | tail -n 1)"
[ -n "$ap" ] || { echo "main_job: no AP in $WORK/stage0/test.log" >&2; exit 1; }
echo "== Summary: Stage0 $ap (Test100)"
