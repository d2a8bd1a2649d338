#!/usr/bin/env bash
# The GPU checks of skfocal, in one call on a bare GPU machine (CUDA torch, no network):
#   1. install the carried wheels (gpu/fetch_wheels.sh) and the project into a temporary
#      folder on PYTHONPATH (nothing is installed into the machine's python);
#   2. run the tests marked `gpu`;
#   3. run the GPU benchmarks: losses at training and large sizes, the default fit against
#      hand-written loops, and the batched grid search when present.
# Usage, from the repository root on the device:  bash gpu/run_checks.sh   (about 5 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import sys, torch, sklearn; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'sklearn', sklearn.__version__)"

SITE=$(mktemp -d)
$PY -m pip install -q --no-index --no-deps --target "$SITE" gpu/wheels/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD"
export SCIPY_ARRAY_API=1
$PY -c "import skfocal, skorch, imblearn, sklearn; print('skfocal from', skfocal.__file__, '| skorch', skorch.__version__, '| imblearn', imblearn.__version__, '| sklearn', sklearn.__version__)" || exit 1

status=0
echo "== tests marked gpu"
timeout 240 $PY -m pytest -m gpu -q -p no:cacheprovider -o addopts="" \
  tests/losses/test_focal.py tests/losses/test_modules.py tests/losses/test_modules_extra.py \
  tests/test_classifier.py tests/test_inputs.py || status=1

echo "== benchmarks/bench_losses.py --device cuda"
timeout 120 $PY benchmarks/bench_losses.py --device cuda || status=1
echo "== benchmarks/bench_fit.py --device cuda --defaults"
timeout 180 $PY benchmarks/bench_fit.py --device cuda --defaults --repeats 3 || status=1
if [ -f benchmarks/bench_search.py ]; then
  echo "== benchmarks/bench_search.py --device cuda --quick"
  timeout 180 $PY benchmarks/bench_search.py --device cuda --quick || status=1
fi
exit $status
