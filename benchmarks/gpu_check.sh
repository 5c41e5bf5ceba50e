#!/usr/bin/env bash
# The GPU check: PyTorch eager on CUDA (fp32, fp16 autocast) for lite and r50-fpn at 512 and 800, ONNX Runtime
# CUDA / TensorRT EP if installed, native TensorRT engines if `tensorrt` imports. Installs nothing from the
# network: it expects the repository and a venv built on that machine (.venv, or $PYTHON).
#
#   benchmarks/gpu_check.sh [--budget 420] [--quick] ...      (arguments go to benchmarks/gpu_check.py)
#
# Results land in $OUT when set (a device session's output folder), else benchmarks/results/gpu_check/.
set -uo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY="$(command -v python3)"; fi
fi
DEST="${OUT:-benchmarks/results/gpu_check}"
mkdir -p "$DEST"
export OUT="$DEST"

{
  echo "== date"; date -u
  echo "== nvidia-smi"; nvidia-smi || echo "no nvidia-smi"
  echo "== clocks and power"; nvidia-smi -q -d CLOCK,POWER,PERFORMANCE 2>/dev/null | head -80
  echo "== cpu"; (lscpu 2>/dev/null || cat /proc/cpuinfo) | head -20
  echo "== jetson"; cat /etc/nv_tegra_release 2>/dev/null; nvpmodel -q 2>/dev/null || echo "not a Jetson"
} > "$DEST/machine.txt" 2>&1

# Our own package, editable and without dependencies, only when it is not importable yet (no network needed).
if ! "$PY" -c "import maskrt.runtime.bench" 2>/dev/null; then
  "$PY" -m pip install --no-deps --no-build-isolation -q -e . >"$DEST/pip.txt" 2>&1 \
    || echo "could not install maskrt (editable, no deps); see $DEST/pip.txt" | tee -a "$DEST/machine.txt"
fi

"$PY" - <<'EOF' > "$DEST/versions.txt" 2>&1
import importlib
for name in ("torch", "torchvision", "onnx", "onnxruntime", "tensorrt", "cuda", "cv2", "numpy"):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as exc:  # report, never stop
        print(name, "missing:", type(exc).__name__, exc)
try:
    import torch
    print("cuda available:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception:
    pass
try:
    import onnxruntime as ort
    print("onnxruntime providers:", ort.get_available_providers())
except Exception:
    pass
EOF
cat "$DEST/versions.txt"

"$PY" benchmarks/gpu_check.py "$@" 2>&1 | tee "$DEST/gpu_check.log"
status=${PIPESTATUS[0]}
echo "gpu_check exit $status; results in $DEST"
exit "$status"
