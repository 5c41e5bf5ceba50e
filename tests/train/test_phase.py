"""The phase head: its loss, phase-only training that leaves every other weight as loaded, and its outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from maskrt.errors import MaskrtError
from maskrt.train.evaluate import phase_metrics
from maskrt.train.models import ModelRecipe, build_model
from maskrt.train.phase import PhaseMaskRCNN, lovasz_hinge, phase_loss, phase_targets


def _batch(n: int = 2, size: int = 96) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Bright discs (the dispersed phase) on a dark background, two per image."""
    g = torch.Generator().manual_seed(0)
    images, targets = [], []
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for k in range(n):
        img = 0.1 + 0.05 * torch.rand((3, size, size), generator=g)
        masks, boxes = [], []
        for cx, cy, r in ((25 + 10 * k, 30, 12), (65, 60 - 8 * k, 16)):
            m = ((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r
            img[:, m] = 0.9
            masks.append(m.to(torch.uint8))
            boxes.append([cx - r, cy - r, cx + r, cy + r])
        images.append(img)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor([1, 1]),
                        "masks": torch.stack(masks)})
    return images, targets


def test_phase_targets_are_the_union_of_the_instance_masks_padded() -> None:
    masks = torch.zeros((2, 4, 5), dtype=torch.uint8)
    masks[0, 0, 0] = 1
    masks[1, 0, 0] = 1
    masks[1, 3, 4] = 1
    t = phase_targets([{"masks": masks}, {"masks": torch.zeros((0, 3, 3), dtype=torch.uint8)}], (8, 8))
    assert t.shape == (2, 8, 8)
    assert t[0].sum() == 2 and t[0, 0, 0] == 1 and t[0, 3, 4] == 1  # overlaps count once
    assert t[1].sum() == 0


@pytest.mark.parametrize("kind", ["dice", "lovasz"])
def test_phase_loss_is_lower_for_the_right_map(kind: str) -> None:
    target = torch.zeros((1, 16, 16))
    target[0, 4:12, 4:12] = 1
    right = torch.full((1, 4, 4), -6.0)
    right[0, 1:3, 1:3] = 6.0
    assert phase_loss(right, target, kind) < 0.3 < phase_loss(-right, target, kind)
    with pytest.raises(ValueError, match="lovasz"):
        phase_loss(right, target, "iou")


def test_lovasz_hinge_is_one_minus_the_iou_of_a_hard_map() -> None:
    """Logits +-1 where right and 0 where wrong: the hinge errors are 0/1 and the loss is exactly 1 - IoU."""
    labels = torch.zeros(40)
    labels[:10] = 1
    pred = labels.clone()
    pred[:2] = 0  # 2 bubble pixels missed
    pred[20:23] = 1  # 3 liquid pixels called vapour
    logits = torch.where(pred == labels, 2 * labels - 1, torch.zeros(40))
    assert float(lovasz_hinge(logits, labels)) == pytest.approx(1 - 8 / 13)
    assert float(lovasz_hinge(3 * (2 * labels - 1), labels)) == 0.0  # right beyond the margin: nothing to learn
    # a wider miss costs more: IoU is what it tracks
    worse = logits.clone()
    worse[23:26] = 0.0
    assert float(lovasz_hinge(worse, labels)) == pytest.approx(1 - 8 / 16)


def test_phase_only_training_learns_the_map_and_changes_nothing_else() -> None:
    torch.manual_seed(0)
    model = build_model(ModelRecipe(arch="lite", classes=["bubble"], image_size=96, phase=True))
    assert isinstance(model, PhaseMaskRCNN)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.set_phase_only(True)
    images, targets = _batch()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    first = None
    for _ in range(60):
        loss = model(images, targets)["loss_phase"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.6 * first
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(k.startswith("phase_head.") for k in changed)  # BatchNorm statistics included

    model.eval()
    with torch.no_grad():
        out = model([images[0][:, :80, :]])[0]  # another size: the map comes back at the image's own size
    assert out["phase"].shape == (80, 96)
    truth = targets[0]["masks"].amax(0)[:80].bool()
    pred = out["phase"] > 0.5
    iou = float((pred & truth).sum()) / float((pred | truth).sum())
    assert iou > 0.5


def test_joint_training_adds_the_phase_loss() -> None:
    torch.manual_seed(0)
    model = build_model(ModelRecipe(arch="lite", classes=["bubble"], image_size=96, phase=True)).train()
    images, targets = _batch()
    losses = model(images, targets)
    assert {"loss_phase", "loss_mask", "loss_classifier", "loss_objectness"} <= set(losses)
    sum(losses.values()).backward()
    assert model.phase_head.block[1].weight.grad is not None
    assert model.backbone.fpn.layer_blocks[0][0].weight.grad is not None  # the features learn from it too


def test_phase_only_keeps_the_checkpoint_and_refuses_what_it_cannot_keep(tmp_path: Path) -> None:
    from maskrt.train.checkpoint import save_checkpoint
    from maskrt.train.weights_source import model_for_training

    recipe = ModelRecipe(arch="lite", classes=["bubble", "droplet"], image_size=96)
    torch.manual_seed(1)
    model = build_model(recipe)
    ckpt = save_checkpoint(tmp_path / "m.pt", model, recipe)
    got_recipe, got = model_for_training(None, ["bubble"], 128, str(ckpt), phase_only=True)
    assert got_recipe.classes == ["bubble", "droplet"] and got_recipe.phase and got_recipe.image_size == 128
    own = model.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in got.state_dict().items() if not k.startswith("phase_head."))
    assert [n for n, p in got.named_parameters() if p.requires_grad] == [
        n for n, _ in got.named_parameters() if n.startswith("phase_head.")]
    with pytest.raises(MaskrtError, match="lacks"):
        model_for_training(None, ["foam"], 128, str(ckpt), phase_only=True)
    with pytest.raises(MaskrtError, match="phase-only"):
        model_for_training(None, ["bubble"], 128, "none", phase_only=True)


def test_phase_metrics_pool_pixels_over_images() -> None:
    stats = {"inter": 30, "union": 40, "void_err": [0.01, 0.03]}
    m = phase_metrics(stats)
    assert m["iou"] == pytest.approx(0.75) and m["void_abs_err"] == pytest.approx(0.02) and m["images"] == 2


def test_cli_phase_only_run_keeps_the_instances_and_exports_the_map(
    tiny_run: Path, shapes_coco: Path, shapes_val: Path, tmp_path: Path
) -> None:
    """`maskrt train --phase-only` on a trained run, then its export: the same detections plus a phase output."""
    from maskrt.cli import main
    from maskrt.train.checkpoint import safe_load

    out = tmp_path / "phase"
    code = main(["train", "--data", str(shapes_coco), "--val", str(shapes_val), "--weights", str(tiny_run / "last.pt"),
                 "--phase-only", "--imgsz", "128", "--iters", "4", "--batch", "2", "--workers", "0",
                 "--optimizer", "adamw", "--lr", "0.003", "--out", str(out), "--no-progress"])
    assert code == 0
    src, got = safe_load(tiny_run / "last.pt")["model"], safe_load(out / "last.pt")
    assert got["recipe"]["phase"] is True
    assert all(torch.equal(v, src[k]) for k, v in got["model"].items() if not k.startswith("phase_head."))
    assert "phase" in got["metrics"] and 0.0 <= got["metrics"]["phase"]["iou"] <= 1.0

    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(out / "last.pt"), "--imgsz", "128", "--out", str(onnx_path), "--no-parity"]) == 0
    from maskrt.runtime import Segmenter

    frame = np.zeros((100, 128, 3), np.uint8)
    with Segmenter(onnx_path, conf=0.05) as seg:
        inst = seg(frame)
    assert inst.phase is not None and inst.phase.shape == (100, 128)
    assert 0.0 <= inst.void_fraction() <= 1.0


def test_phase_loss_option_is_checked_before_training(tiny_run: Path, shapes_coco: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --phase-loss, or one for a model without a phase head: one line, exit 2, no run folder."""
    from maskrt.cli import main

    common = ["train", "--data", str(shapes_coco), "--weights", str(tiny_run / "last.pt"), "--imgsz", "64",
              "--iters", "1", "--batch", "1", "--workers", "0", "--no-progress"]
    assert main([*common, "--phase-only", "--phase-loss", "iou", "--out", str(tmp_path / "a")]) == 2
    assert "unknown phase loss 'iou'; use --phase-loss dice or lovasz" in capsys.readouterr().err
    assert main([*common, "--phase-loss", "lovasz", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--phase-loss lovasz" in err and "no phase head" in err and "--phase" in err
    assert not (tmp_path / "b" / "last.pt").exists()


def _specks(n: int, size: int, seed: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Bubbles 3-8 px across (as in isolated-boiling frames), a dozen per image."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images, targets = [], []
    for _ in range(n):
        img = 0.1 + 0.05 * torch.rand((3, size, size), generator=g)
        masks, boxes = [], []
        for _ in range(12):
            cx, cy = (int(v) for v in torch.randint(5, size - 5, (2,), generator=g))
            r = float(1.5 + 2.5 * torch.rand(1, generator=g))
            m = ((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r
            img[:, m] = 0.9
            masks.append(m.to(torch.uint8))
            boxes.append([cx - r, cy - r, cx + r, cy + r])
        images.append(img)
        targets.append({"boxes": torch.tensor(boxes), "labels": torch.ones(len(boxes), dtype=torch.int64),
                        "masks": torch.stack(masks)})
    return images, targets


def test_stride_two_head_places_small_bubbles_better_than_stride_four() -> None:
    """Trained alike, the stride-2 refinement's map beats the stride-4 map on unseen images of 3-8 px bubbles."""
    images, targets = _specks(2, 64, seed=0)
    test_images, test_targets = _specks(2, 64, seed=1)
    iou = {}
    for stride in (4, 2):
        torch.manual_seed(0)
        model = build_model(ModelRecipe(arch="lite", classes=["bubble"], image_size=64, phase=True,
                                        phase_stride=stride))
        assert model.phase_head.stride == stride
        model.set_phase_only(True)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
        model.train()
        for _ in range(60):
            loss = model(images, targets)["loss_phase"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            outs = model(test_images)
        inter = union = 0
        for out, t in zip(outs, test_targets):
            assert out["phase"].shape == (64, 64)
            pred, truth = out["phase"] > 0.5, t["masks"].amax(0).bool()
            inter, union = inter + int((pred & truth).sum()), union + int((pred | truth).sum())
        iou[stride] = inter / union
    assert iou[2] > iou[4] + 0.08, iou


def test_stride_two_refinement_starts_as_the_upsampled_stride_four_map() -> None:
    from maskrt.train.phase import PhaseHead

    torch.manual_seed(0)
    head = PhaseHead(8, hidden=8, stride=2).eval()
    feature, image = torch.randn(1, 8, 6, 5), torch.randn(1, 3, 24, 20)
    with torch.no_grad():
        got = head(feature, image)
        coarse = head.block(feature)
    assert got.shape == (1, 12, 10)
    want = torch.nn.functional.interpolate(coarse, size=(12, 10), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(got, want, atol=1e-6)
    with pytest.raises(ValueError, match="input image"):
        head(feature)
    with pytest.raises(ValueError, match="stride 3"):
        PhaseHead(8, stride=3)
    with pytest.raises(MaskrtError, match="--phase-stride"):
        ModelRecipe(arch="lite", classes=["bubble"], phase=True, phase_stride=8)


def test_phase_stride_two_keeps_a_stride_four_head_and_never_drops_a_refinement(tmp_path: Path) -> None:
    from maskrt.train.checkpoint import save_checkpoint
    from maskrt.train.weights_source import model_for_training

    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=96, phase=True)
    torch.manual_seed(2)
    model = build_model(recipe)
    ckpt = save_checkpoint(tmp_path / "s4.pt", model, recipe)
    got_recipe, got = model_for_training(None, ["bubble"], 96, str(ckpt), phase_only=True, phase_stride=2)
    assert got_recipe.phase_stride == 2 and got.phase_head.refine is not None
    own = model.state_dict()
    state = got.state_dict()
    assert all(torch.equal(state[k], v) for k, v in own.items())  # the stride-4 head too: only the refinement is new
    assert [n for n, p in got.named_parameters() if p.requires_grad] == [
        n for n, _ in got.named_parameters() if n.startswith("phase_head.")]

    ckpt2 = save_checkpoint(tmp_path / "s2.pt", got, got_recipe)
    again, _ = model_for_training(None, ["bubble"], 96, str(ckpt2), phase_only=True)  # the checkpoint's stride
    assert again.phase_stride == 2
    joint, m = model_for_training(None, ["bubble"], 96, str(ckpt2))  # a full fine-tune keeps it too
    assert joint.phase_stride == 2 and torch.equal(m.state_dict()["phase_head.refine.fuse.0.weight"],
                                                   state["phase_head.refine.fuse.0.weight"])
    for kw in ({"phase_only": True}, {}):
        with pytest.raises(MaskrtError, match="drop its trained layers"):
            model_for_training(None, ["bubble"], 96, str(ckpt2), phase_stride=4, **kw)


def _fat_maps(n: int = 3, size: int = 64, grow: float = 1.5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Discs as truth; their probability map's 0.5 level ``grow`` px outside the edge (a biased map)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    maps = []
    for _ in range(n):
        dist = np.full((size, size), np.inf, np.float32)
        for _ in range(6):
            cx, cy, r = rng.uniform(8, size - 8), rng.uniform(8, size - 8), rng.uniform(2, 6)
            dist = np.minimum(dist, np.hypot(xx - cx, yy - cy) - r)  # signed distance to the nearest disc
        prob = 1.0 / (1.0 + np.exp(dist - grow))
        maps.append((prob.astype(np.float32), dist <= 0))
    return maps


def test_choose_phase_offset_takes_the_bias_out_of_a_fat_map() -> None:
    from maskrt.train.phase import choose_phase_offset, phase_scores

    maps = _fat_maps()
    at_half = phase_scores(maps, 0.5)
    offset, after = choose_phase_offset(maps, "void")
    # the map's edge is 1.5 px out: its logit there is 1.5, so the right threshold is near sigmoid(1.5)
    assert 1.0 <= offset <= 2.0, offset
    assert after["void_abs_err"] < 0.25 * at_half["void_abs_err"]
    assert after["iou"] > at_half["iou"] + 0.1
    offset_iou, by_iou = choose_phase_offset(maps, "iou")
    assert by_iou["iou"] >= after["iou"] and 1.0 <= offset_iou <= 2.0
    exact = [(truth.astype(np.float32), truth) for _, truth in maps]  # nothing to correct: no offset
    assert choose_phase_offset(exact, "void") == (0.0, phase_scores(exact, 0.5))
    with pytest.raises(ValueError, match="void"):
        choose_phase_offset(maps, "dice")


@pytest.mark.parametrize("stride", [4, 2])
def test_shift_phase_logits_moves_the_map_and_nothing_else(stride: int) -> None:
    from maskrt.train.phase import shift_phase_logits

    torch.manual_seed(0)
    model = build_model(ModelRecipe(arch="lite", classes=["bubble"], image_size=96, phase=True,
                                    phase_stride=stride)).eval()
    if stride == 2:  # a trained refinement (it starts at zero)
        with torch.no_grad():
            model.phase_head.refine.fuse[-1].weight.normal_(0, 0.1)
    image = [torch.rand(3, 96, 96)]
    with torch.no_grad():
        before = model(image)[0]
        shift_phase_logits(model, 0.8)
        after = model(image)[0]
    logit = torch.logit(before["phase"].double())
    assert torch.allclose(after["phase"].double(), torch.sigmoid(logit - 0.8), atol=1e-5)
    assert torch.equal(after["boxes"], before["boxes"]) and torch.equal(after["scores"], before["scores"])


def test_calibrate_phase_tool_writes_a_new_checkpoint_with_only_the_bias_moved(
    tiny_run: Path, shapes_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from maskrt.train.checkpoint import load_checkpoint, save_checkpoint

    spec = importlib.util.spec_from_file_location("calibrate_phase", Path(__file__).resolve().parents[2]
                                                  / "tools" / "calibrate_phase.py")
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=128, phase=True, phase_stride=2)
    torch.manual_seed(0)
    model = build_model(recipe)
    with torch.no_grad():
        model.phase_head.block[-1].bias.fill_(3.0)  # "vapour everywhere": a map biased far up
    src = save_checkpoint(tmp_path / "phase.pt", model, recipe)
    out = tmp_path / "cal.pt"
    assert tool.main([str(src), "--data", str(shapes_coco), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "phase map at 0.5" in text and "wrote" in text
    a, b = load_checkpoint(src), load_checkpoint(out)
    moved = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert moved == ["phase_head.refine.fuse.8.bias"]  # the refinement's last 1x1
    info = b["phase_calibrated"]
    assert info["offset"] > 0.5 and info["after"]["void_abs_err"] < info["before"]["void_abs_err"]
    assert b["model"][moved[0]] == pytest.approx(a["model"][moved[0]] - info["offset"])
    assert b["recipe"] == a["recipe"]
    # refusals: one line, exit 2, nothing written over an input or half-written
    before = src.read_bytes()
    assert tool.main([str(src), "--data", str(shapes_coco), "--out", str(src)]) == 2
    assert src.read_bytes() == before
    assert tool.main([str(tiny_run / "last.pt"), "--data", str(shapes_coco), "--out", str(tmp_path / "x.pt")]) == 2
    assert "no phase head" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    assert tool.main([str(src), "--data", str(shapes_coco), "--out", str(tmp_path / "y.pt"),
                      "--objective", "f1"]) == 2
