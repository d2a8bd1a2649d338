#!/usr/bin/env bash
# Download, on a machine with network, the wheels the GPU machine lacks, into gpu/wheels/
# (git-ignored; carried to the device with the working tree: run(carry=["gpu/wheels"])).
# The device's python3 is 3.12 with torch (CUDA), scikit-learn, pandas and accelerate, but no
# skorch, imbalanced-learn, pytest or hypothesis and no network. scikit-learn is carried too,
# pinned to the version this project is tested with, in case the device's is older.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf wheels && mkdir -p wheels
pure=(
  skorch==1.4.0 imbalanced-learn==0.14.2 sklearn-compat tabulate tqdm
  pytest pluggy iniconfig packaging sortedcontainers attrs
)
python3 -m pip download -q --no-deps -d wheels "${pure[@]}"
python3 -m pip download -q --no-deps -d wheels --only-binary=:all: \
  --python-version 3.12 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 scikit-learn==1.9.1 hypothesis
ls -1 wheels
du -sh wheels
