# One-command set-up: `make demo` runs the main job, `make test` the tests; both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.maskrt-installed

.PHONY: demo test test-all typecheck lint bench clean bundled-model triton-env real-footage-stage

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,cpu,dev]'
	$(PY) -m pip install -q --no-deps tensorrt-stubs
	touch $@

demo: $(STAMP)
	$(VENV)/bin/maskrt demo

test: $(STAMP)
	$(MAKE) --no-print-directory triton-env
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory lint

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

typecheck: $(STAMP)
	$(PY) -m mypy --config-file mypy-trt.ini export/tensorrt_build.py runtime/backends/tensorrt_backend.py

lint: $(STAMP)
	$(PY) -m ruff check .

# The PyTriton venv of `maskrt serve` (numpy<2, made from Debian's python3.11; tests/serve/ use it): quick when it
# is already there for this checkout; skipped, like those tests, where /usr/bin/python3.11 is absent
triton-env: $(STAMP)
	@if [ -x /usr/bin/python3.11 ]; then $(VENV)/bin/maskrt serve --setup; \
	else echo "triton-env: no /usr/bin/python3.11, maskrt serve and tests/serve/test_serve.py are skipped"; fi

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache runs demo-out

# The bundled default model (runtime/models/README.md): synthetic data, training on CPU, packaging + model card.
TRAIN_CMD := $(VENV)/bin/maskrt train --data data-out/synth-train --val data-out/val-mixed --arch lite --imgsz 320 \
	--iters 1200 --batch 4 --lr 0.02 --workers 2 --out runs/bubbles-lite --save-every 50 --eval-every 400 --seed 0
# the run was then extended (a second cosine cycle from the 1200-iteration state, same optimizer and data order)
EXTEND_CMD := $(VENV)/bin/maskrt train --out runs/bubbles-lite --resume --iters 2800 --eval-every 400 --save-every 50 \
	--workers 2
# then fine-tuned at 512 px: the size it is exported and scored at (small droplets need the pixels)
FINE512_CMD := $(VENV)/bin/maskrt train --data data-out/synth-train --val data-out/val-mixed --arch lite --imgsz 512 \
	--iters 600 --batch 4 --lr 0.01 --workers 2 --weights runs/bubbles-lite/best.pt --out runs/bubbles-lite-512 \
	--save-every 25 --eval-every 200 --seed 1
# then at 640 px: 512 px scenes upscaled 1.25x, so that 5-8 px droplets cover more feature cells
FINE640_CMD := $(VENV)/bin/maskrt train --data data-out/synth-train --val data-out/val-mixed --arch lite --imgsz 640 \
	--iters 360 --batch 4 --lr 0.005 --workers 2 --weights runs/bubbles-lite-512/best.pt --out runs/bubbles-lite-640 \
	--save-every 20 --eval-every 120 --seed 2
# then 600 more at 640 px on the same scenes and 2000 new ones (seed 3), from that model
FINE640B_CMD := $(VENV)/bin/maskrt train --data data-out/synth-train --data data-out/synth-train-s3 --val data-out/val-mixed \
	--arch lite --imgsz 640 --iters 600 --batch 4 --lr 0.005 --workers 2 --weights runs/bubbles-lite-640/best.pt \
	--out runs/bubbles-lite-640b --save-every 20 --eval-every 200 --seed 4
# then 750 more at 640 px on those and 2000 more new scenes (seed 5), at a lower learning rate
FINE640C_CMD := $(VENV)/bin/maskrt train --data data-out/synth-train --data data-out/synth-train-s3 \
	--data data-out/synth-train-s5 --val data-out/val-mixed --arch lite --imgsz 640 --iters 750 --batch 4 --lr 0.004 \
	--workers 2 --weights runs/bubbles-lite-640b/best.pt --out runs/bubbles-lite-640c --save-every 25 --eval-every 250 \
	--seed 6
SCHEDULE := 2800 iterations of batch 4 at 320 px from scratch (lr 0.02, two cosine cycles), then 600 iterations of \
	batch 4 at 512 px from that state (lr 0.01), then 360 iterations of batch 4 at 640 px (lr 0.005), \
	then 600 more at 640 px on 4000 scenes (lr 0.005), then 750 more at 640 px on 6000 scenes (lr 0.004; the last checkpoint)
TRAIN_WALL := 489 min on 2 CPU cores (320 px: 1200 iterations in 74 min, extended to 2800 in 109 min; 512 px: 600 iterations in 66 min; 640 px: 360 iterations in 57 min, then 600 in 85 min, then 750 in 102 min)
SYNTH_CMD := $(VENV)/bin/maskrt synth data-out/synth-train --images 2000 --size 512 --scene mixed --seed 0 && \
	$(VENV)/bin/maskrt synth data-out/synth-train-s3 --images 2000 --size 512 --scene mixed --seed 3 && \
	$(VENV)/bin/maskrt synth data-out/synth-train-s5 --images 2000 --size 512 --scene mixed --seed 5 && \
	$(VENV)/bin/maskrt synth data-out/val-mixed --images 40 --size 512 --scene mixed --seed 500
bundled-model: $(STAMP)
	$(SYNTH_CMD)
	$(TRAIN_CMD)
	$(EXTEND_CMD)
	$(FINE512_CMD)
	$(FINE640_CMD)
	$(FINE640B_CMD)
	$(FINE640C_CMD)
	$(PY) tools/bundle_model.py runs/bubbles-lite-640c/last.pt --finetune-iters 200 --schedule "$(SCHEDULE)" \
		--train-wall "$(TRAIN_WALL)" --data-command "$(SYNTH_CMD)" \
		--train-command "$(TRAIN_CMD) && $(EXTEND_CMD) && $(FINE512_CMD) && $(FINE640_CMD) && $(FINE640B_CMD) && $(FINE640C_CMD)"

# The real-footage stage (issue 17), from the bundled model's last synthetic stage: real bottom-view boiling frames
# outside the held-out blocks and their guard bands (twice), realistic synthetic bottom views at 256 px, new mixed
# scenes and the real Taylor train split (twice), at 640 px. Measured, not bundled yet: on the held-out real blocks
# it lifts isolated-bubble F1 0.68 -> 0.96 and dense union IoU 0.07 -> 0.27, but held-out synthetic mixed mask AP50
# fell 0.907 -> 0.775 (benchmarks/README.md, "Real footage"), past the issue's 0.02 limit.
REAL_DATA_CMD := $(PY) benchmarks/real_footage.py --prepare-training-data data-out && \
	$(VENV)/bin/maskrt synth data-out/synth-bottom --images 1200 --size 256 --scene boiling-bottom --seed 11 && \
	$(VENV)/bin/maskrt synth data-out/synth-mixed --images 1200 --size 512 --scene mixed --seed 13 && \
	$(VENV)/bin/maskrt synth data-out/val-mixed --images 40 --size 512 --scene mixed --seed 500 && \
	$(VENV)/bin/maskrt synth data-out/heldout-mixed-classic --images 100 --size 512 --scene mixed --seed 1000 \
		--bottom-style classic
FINEREAL_CMD := $(VENV)/bin/maskrt train --data data-out/real-boiling-train --data data-out/real-boiling-train \
	--data data-out/synth-bottom --data data-out/synth-mixed --data data-out/taylor-train --data data-out/taylor-train \
	--val data-out/real-boiling-val --val data-out/val-mixed --arch lite --weights bubbles-lite \
	--imgsz 640 --iters 240 --batch 4 --lr 0.006 --warmup 20 --workers 2 --out runs/bubbles-lite-real --save-every 10 \
	--eval-every 120 --seed 21
real-footage-stage: $(STAMP)
	$(REAL_DATA_CMD)
	$(FINEREAL_CMD)
	$(VENV)/bin/maskrt export runs/bubbles-lite-real/last.pt --imgsz 640 --max-det 300 --conf 0.3 \
		--out runs/bubbles-lite-real/model.onnx
	$(PY) benchmarks/real_footage.py runs/bubbles-lite-real/model.onnx --md runs/bubbles-lite-real/real_footage.md
	$(VENV)/bin/maskrt eval runs/bubbles-lite-real/last.pt --data data-out/heldout-mixed-classic --max-det 550
