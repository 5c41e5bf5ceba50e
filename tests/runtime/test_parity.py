"""The runtime gives the PyTorch model's results: ONNX Runtime + host postprocessing vs torch + torchvision.

Reference: the export wrapper (PyTorch) on the runtime's own letterboxed input, boxes mapped back to
the frame and masks pasted with torchvision's ``paste_masks_in_image`` at frame resolution. Test: the
runtime's ``Segmenter(frame)``. Compared with the export parity rules (``maskrt.export.parity``) on
synthetic scenes of several sizes and on real Taylor-bubble images.

The export takes ~20-40 s on a shared 2-core CPU, so this module is marked slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("maskrt.export.onnx_export")

from maskrt.runtime import Segmenter
from maskrt.runtime.images import read_image

pytestmark = pytest.mark.slow

INPUT = 256
TAYLOR = [Path(__file__).parents[1] / "data" / "taylor-bubbles-coco",
          Path(__file__).parents[3] / "shared" / "data" / "taylor-bubbles-coco"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """A random-weight ``lite`` model with decisive heads (no score ties, no 0.5 masks), exported once."""
    from maskrt.export.metadata import make_meta
    from maskrt.export.onnx_export import export_onnx
    from maskrt.export.wrapper import ExportWrapper
    from maskrt.train.models import ModelRecipe, build_model

    torch.manual_seed(0)
    recipe = ModelRecipe(arch="lite", classes=["bubble", "droplet"], image_size=INPUT)
    model = build_model(recipe)
    with torch.no_grad():  # spread the random heads' outputs so that thresholds are not coin flips
        model.roi_heads.box_predictor.cls_score.weight.mul_(30.0)
        model.roi_heads.mask_predictor.mask_fcn_logits.weight.mul_(30.0)
    wrapper = ExportWrapper(model, (INPUT, INPUT), 50, recipe.mean, recipe.std)
    meta = make_meta(recipe, (INPUT, INPUT), 50, "fp32", {}, 0.3, 0.5)
    path = tmp_path_factory.mktemp("parity") / "lite.onnx"
    export_onnx(wrapper, meta, path)
    return wrapper, path


def reference(wrapper, seg: Segmenter, frame: np.ndarray) -> dict[str, np.ndarray]:
    """PyTorch outputs on the runtime's input, mapped to the frame the way torchvision's postprocess does."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    from torchvision.ops import clip_boxes_to_image

    hw = (int(frame.shape[0]), int(frame.shape[1]))
    x, s = seg.preprocess(frame)
    with torch.inference_mode():
        boxes, scores, labels, masks, num = wrapper(torch.from_numpy(x))
    n = int(num[0])
    keep = scores[0, :n] >= seg.conf
    b = clip_boxes_to_image(boxes[0, :n][keep] / s, hw)
    m = paste_masks_in_image(masks[0, :n][keep][:, None], b, hw, padding=1)[:, 0] > seg.mask_threshold
    return {"boxes": b.numpy(), "scores": scores[0, :n][keep].numpy(),
            "labels": labels[0, :n][keep].numpy().astype(np.int64) - 1, "masks": m.numpy()}


def frames() -> list[tuple[str, np.ndarray]]:
    from maskrt.export.scenes import bubble_scene

    rng = np.random.default_rng(3)
    out = [(f"synthetic {h}x{w}", bubble_scene((h, w), rng).image) for h, w in ((300, 400), (520, 260), (256, 256))]
    root = next((p for p in TAYLOR if p.is_dir()), None)
    if root is not None:
        files = sorted(root.rglob("*.jpg"))[:3]
        out += [(f"taylor {f.name}", read_image(f)) for f in files]
    return out


def test_runtime_matches_pytorch_on_synthetic_and_taylor_images(exported) -> None:
    from maskrt.export.parity import ParityRules, compare

    wrapper, path = exported
    seg = Segmenter(path, threads=2, paste="torchvision")
    rules = ParityRules(score_floor=seg.conf)
    checked = 0
    total = 0
    for name, frame in frames():
        inst = seg(frame)
        test = {"boxes": inst.boxes, "scores": inst.scores, "labels": inst.class_ids, "masks": inst.masks}
        ref = reference(wrapper, seg, frame)
        result = compare(ref, test, rules, wrapper.max_det)
        assert result.missing == 0 and result.extra == 0, (name, result)
        assert result.min_box_iou >= rules.box_iou, (name, result)
        assert result.min_mask_iou >= rules.mask_iou, (name, result)
        assert result.max_score_diff <= rules.score_tol, (name, result)
        print(f"{name}: {result}")  # shown with -s: how much each image exercised
        checked += 1
        total += result.matched
    assert checked >= 3
    assert total > 0, "the test model detected nothing: the comparison would be empty"


def test_preprocess_matches_the_exporters_letterbox(exported) -> None:
    from maskrt.export.scenes import letterbox

    _, path = exported
    seg = Segmenter(path, threads=1, paste="torchvision")
    for _, frame in frames():
        x, _ = seg.preprocess(frame)
        np.testing.assert_array_equal(x[0], letterbox(frame, (INPUT, INPUT), seg.meta.pad_value))
