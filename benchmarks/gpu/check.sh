#!/usr/bin/env bash
# The GPU checks of issues 3 and 4, run on the lent GPU machine after benchmarks/gpu/prepare.sh's
# pieces were sent (benchmarks/gpu/README.md). Each stage writes its log (and its figures) under $OUT,
# the folder the device tool brings back, so a stage that fails or runs out of time loses nothing
# the earlier ones measured.
#
#     bash benchmarks/gpu/check.sh STAGE...
#
# stages, in the order they pay off:
#   setup      assemble /tmp/bundle.part*, check its sha256, install the wheels into /tmp/gpu/site
#   env        versions, GPU, onnxruntime providers (the CUDA provider must be the one a session runs on)
#   tests      the test suite's GPU tests (pytest -m gpu) and tests/test_encode.py
#   encode     benchmarks/encode.py --device cuda: plain sentence-transformers fp32/fp16 vs ONNX fp32/O2/fp16,
#              the full model and a 3-layer student (--students 3)
#   suite      harness run suites/scifact.toml on the GPU (its GPU settings: 20 epochs, batch 64, ...)
#   train      benchmarks/train.py --device cuda: the harness's training vs a plain trainer script
#   selection  harness run suites/scifact-selection.toml (grid x seeds x learning curve)
#
# GPU_CHECK_LOCAL=1 runs the same commands here, on the CPU, on small slices (no setup: this machine's
# packages), to check the script before spending device time on it.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
OUT="${OUT:-/tmp/gpu-check-out}"
W=/tmp/gpu
mkdir -p "$OUT" "$W"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1  # tokenizers keep their threads: the encoder overlaps them with the GPU
LOCAL="${GPU_CHECK_LOCAL:-0}"
if [ "$LOCAL" = 1 ]; then
  DEV=cpu
  export HARNESS_DATA_DIR="${HARNESS_DATA_DIR:-$(cd .. && pwd)/shared/data}"
else
  DEV=cuda
  # the carried wheels shadow the machine's own sentence-transformers 6 / transformers 5
  export PYTHONPATH="$W/site:$REPO" HARNESS_DATA_DIR="$W/data"
  # onnxruntime-gpu's CUDA provider needs CUDA 13, cuBLAS and cuDNN 9: torch's nvidia-* packages
  LD_LIBRARY_PATH="$(python3 -c 'import glob, site; print(":".join(sorted(glob.glob(site.getsitepackages()[0] + "/nvidia/*/lib") + glob.glob(site.getsitepackages()[0] + "/nvidia/cu*/lib"))))'):${LD_LIBRARY_PATH:-}"
  export LD_LIBRARY_PATH
fi

setup() {
  [ "$LOCAL" = 1 ] && { echo "local: using this machine's packages"; return 0; }
  if [ -f "$W/installed" ]; then echo "already installed in $W/site"; return 0; fi
  ls /tmp/bundle.part* >/dev/null || { echo "no /tmp/bundle.part*: send the pieces first"; return 1; }
  cat $(ls /tmp/bundle.part* | sort -V) > "$W/bundle.tar" || return 1
  (cd "$W" && sha256sum -c "$REPO/.gpu/meta/bundle.sha256") || { echo "bundle incomplete: resend the pieces"; return 1; }
  tar -xf "$W/bundle.tar" -C "$W" && rm "$W/bundle.tar"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$W/site" "$W"/whl/*.whl || return 1
  # the harness itself, with its entry points (the domain plugins), built from the carried checkout
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$W/site" . || return 1
  touch "$W/installed"
}

env_() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 - <<'EOF'
import platform
from importlib.metadata import version
for n in ("torch", "sentence-transformers", "transformers", "tokenizers", "optimum", "optimum-onnx",
          "onnxruntime-gpu", "onnx", "datasets", "polars", "pyarrow", "embedding-harness"):
    try:
        print(f"{n} {version(n)}")
    except Exception as e:  # noqa: BLE001
        print(f"{n} MISSING ({e})")
print("python", platform.python_version())
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
import onnxruntime as ort
print("onnxruntime", ort.__version__, ort.__file__, "available:", ort.get_available_providers())
from harness.encode import OnnxEncoder  # noqa: F401  (the harness imports with these versions)
EOF
}

tests_() {
  python3 -m pytest -q -p no:cacheprovider -x -m "gpu" tests/ || return 1
  python3 -m pytest -q -p no:cacheprovider tests/test_encode.py
}

encode() {
  if [ "$LOCAL" = 1 ]; then
    python3 benchmarks/encode.py --device cpu --limit 64 --reps 1 --variants fp32,O2 --quality speed --students 3 \
      --work "$W/bench"
  else
    python3 benchmarks/encode.py --device cuda --batch-size 256 --reps 5 --variants fp32,O2,fp16 --quality full \
      --students 3 --work "$W/bench"  # the 3-layer student's rows; OpenVINO is a CPU engine: no rows here
  fi > "$OUT/encode.jsonl"
  local rc=$?
  cat "$OUT/encode.jsonl"
  return $rc
}

run_suite() {  # $1: suite file, $2: folder name under $OUT
  local args=(run "$1" --device "$DEV" --out "$W/reports" -q --junitxml "$W/reports/$2.xml")
  [ "$LOCAL" = 1 ] && args=(run "$1" --device "$DEV" --collect-only)
  python3 -m harness "${args[@]}"
  local rc=$?
  local run="$W/reports/$(basename "$1" .toml)/latest"
  if [ -d "$run" ]; then  # results, report and JUnit of the run, as one file
    tar -czf "$OUT/$2.tar.gz" -C "$run" results.json report.html -C "$W/reports" "$2.xml" 2>/dev/null
  fi
  return $rc
}

suite() { run_suite suites/scifact.toml suite; }
selection() { run_suite suites/scifact-selection.toml selection; }

train() {
  if [ "$LOCAL" = 1 ]; then
    python3 benchmarks/train.py --device cpu --pairs 32 --reps 1
  else
    python3 benchmarks/train.py --device cuda --batch-size 64 --max-seq-length 256 --epochs 3 --reps 3
  fi | tee "$OUT/train.jsonl"
}

status=0
for stage in "$@"; do
  start=$(date +%s)
  echo "=== $stage"
  case "$stage" in
    setup) setup ;;
    env) env_ ;;
    tests) tests_ ;;
    encode) encode ;;
    suite) suite ;;
    train) train ;;
    selection) selection ;;
    *) echo "unknown stage $stage (setup env tests encode suite train selection)"; false ;;
  esac 2>&1 | tee "$OUT/$stage.log"
  rc=${PIPESTATUS[0]}
  echo "=== $stage: exit $rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/stages.log"
  if [ $rc -ne 0 ]; then
    status=1
    [ "$stage" = setup ] && break  # nothing else can run
  fi
done
exit $status
