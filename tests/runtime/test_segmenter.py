"""Segmenter end to end on tiny contract-honouring ONNX models: geometry, thresholds, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.runtime import Instances, Segmenter
from maskrt.runtime.segmenter import resolve_model


def test_boxes_come_back_in_frame_pixels(make_model) -> None:
    # 128x128 input; a 256x512 frame is scaled by 0.25 into the top-left 64x128 of the input
    seg = Segmenter(make_model(), threads=1)
    inst = seg(np.zeros((256, 512, 3), np.uint8))
    assert isinstance(inst, Instances)
    assert inst.frame_hw == (256, 512)
    np.testing.assert_allclose(inst.boxes, [[40, 40, 200, 200], [240, 80, 400, 240]])
    assert inst.class_ids.tolist() == [0, 1]
    assert [inst.class_names[c] for c in inst.class_ids] == ["bubble", "droplet"]
    # the disc mask (probability (1.5 - r)^2, r = distance/half-size) keeps r < 1.5 - sqrt(0.5), inside its box
    for i in range(len(inst)):
        m = inst.mask(i)
        ys, xs = np.nonzero(m)
        x0, y0, x1, y1 = inst.boxes[i]
        assert xs.min() >= x0 - 1 and xs.max() <= x1 and ys.min() >= y0 - 1 and ys.max() <= y1
        radius = (1.5 - np.sqrt(0.5)) * (x1 - x0) / 2
        assert m.sum() == pytest.approx(np.pi * radius**2, rel=0.03)
    assert set(seg.timings) == {"preprocess", "infer", "postprocess"}
    assert all(v >= 0 for v in seg.timings.values())


def test_threshold_and_class_filter(make_model) -> None:
    path = make_model()
    frame = np.zeros((128, 128, 3), np.uint8)
    assert len(Segmenter(path, threads=1)(frame)) == 2  # the model's own 0.5 threshold drops the 0.3 one
    low = Segmenter(path, threads=1, conf=0.2)(frame)
    assert len(low) == 3
    assert low.scores.tolist() == pytest.approx([0.9, 0.8, 0.3])
    only_droplets = Segmenter(path, threads=1, conf=0.2, classes=["droplet"])(frame)
    assert only_droplets.class_ids.tolist() == [1]
    with pytest.raises(MaskrtError, match="unknown class 'foam'.*bubble, droplet"):
        Segmenter(path, classes=["foam"])


def test_boxes_are_clipped_to_the_frame(make_model) -> None:
    # a box reaching into the letterbox padding must end at the frame's edge
    seg = Segmenter(make_model(dets=[((100, 10, 128, 120), 0.9, 1)]), threads=1)
    inst = seg(np.zeros((100, 50, 3), np.uint8))  # s = 1.28 -> frame 100x50 fills x < 64 of the input
    assert inst.boxes[0, 2] == pytest.approx(50.0)
    assert inst.boxes[0, 3] == pytest.approx(120 / 1.28)
    assert inst.regions[0, 2] <= 50 and inst.regions[0, 3] <= 100


def test_grey_and_16bit_frames_match_the_colour_frame(make_model) -> None:
    seg = Segmenter(make_model(), threads=1)
    grey = (np.arange(200 * 300) % 251).astype(np.uint8).reshape(200, 300)
    bgr = np.repeat(grey[:, :, None], 3, axis=2)
    x_bgr, s_bgr = seg.preprocess(bgr)
    x_grey, s_grey = seg.preprocess(grey)
    x_16, _ = seg.preprocess(grey.astype(np.uint16) * 257)  # full-range 16-bit
    x_12, _ = seg.preprocess(grey.astype(np.uint16) * 16)  # 12-bit data in a 16-bit container
    assert s_bgr == s_grey
    np.testing.assert_array_equal(x_grey, x_bgr)
    assert np.abs(x_16.astype(int) - x_bgr.astype(int)).max() <= 1
    assert np.abs(x_12.astype(int) - x_bgr.astype(int)).max() <= 2
    inst = seg(grey.astype(np.uint16) * 257)
    assert inst.frame_hw == (200, 300) and len(inst) == 2


def test_empty_and_malformed_frames_raise_user_errors(make_model) -> None:
    seg = Segmenter(make_model(), threads=1)
    for bad in (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 10), np.uint8), np.zeros((5, 5, 2), np.uint8),
                np.zeros(10, np.uint8)):
        with pytest.raises(MaskrtError):
            seg(bad)


def test_missing_model_and_missing_bundled_model(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(MaskrtError, match="model file not found"):
        Segmenter(tmp_path / "nope.onnx")
    import maskrt.runtime.segmenter as segmod

    monkeypatch.setattr(segmod, "BUNDLED_MODEL", tmp_path / "models" / "absent.onnx")
    with pytest.raises(MaskrtError, match="no bundled default model"):
        resolve_model(None)


def test_model_without_metadata_or_with_wrong_version(make_model, tmp_path: Path) -> None:
    with pytest.raises(MaskrtError, match="no maskrt metadata"):
        Segmenter(make_model(drop_props=True))
    with pytest.raises(MaskrtError, match="format version"):
        Segmenter(make_model(props={"maskrt.format_version": "999"}))
    with pytest.raises(MaskrtError, match="metadata says"):
        Segmenter(make_model(props={"maskrt.input_size": json.dumps([64, 64])}))


def test_corrupt_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx protobuf")
    with pytest.raises(MaskrtError, match="broken.onnx: ONNX Runtime cannot load"):
        Segmenter(bad, backend="onnxruntime")


def test_unknown_device_and_suffix(make_model, tmp_path: Path) -> None:
    with pytest.raises(MaskrtError, match="unknown device"):
        Segmenter(make_model(), device="tpu")
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with pytest.raises(MaskrtError, match="suffix"):
        Segmenter(odd)


def test_stages_compose_like_call_and_warmup(make_model) -> None:
    seg = Segmenter(make_model(), threads=1)
    frame = np.full((90, 160, 3), 30, np.uint8)
    seg.warmup(2)
    x, s = seg.preprocess(frame)
    assert x.shape == (1, 128, 128, 3) and x.dtype == np.uint8
    out = seg.infer(x)
    assert set(out) == {"boxes", "scores", "labels", "masks", "num_dets"}
    staged = seg.postprocess(out, s, frame.shape[:2])
    called = seg(frame)
    np.testing.assert_array_equal(staged.boxes, called.boxes)
    np.testing.assert_array_equal(staged.masks, called.masks)


def test_batch_models_segment_several_frames_per_inference(make_model) -> None:
    seg = Segmenter(make_model(batch=2, dets=[((10, 10, 50, 50), 0.9, 1), ((60, 20, 100, 60), 0.8, 2)]), threads=1)
    assert seg.batch_size == 2
    frames = [np.zeros((128, 128, 3), np.uint8), np.zeros((256, 256), np.uint8), np.zeros((64, 64, 3), np.uint8)]
    results = seg.batch(frames)
    # item 0 of each inference holds both detections, item 1 only the first
    assert [len(r) for r in results] == [2, 1, 2]
    assert [r.frame_hw for r in results] == [(128, 128), (256, 256), (64, 64)]
    np.testing.assert_allclose(results[1].boxes, [[20, 20, 100, 100]])
    assert len(seg(frames[0])) == 2  # a single frame pads the batch


def test_bit_depth_fixes_the_scaling_of_dark_16bit_frames(make_model) -> None:
    dark = np.full((64, 64), 300, np.uint16)  # a dark frame from a 12-bit camera
    inferred = Segmenter(make_model(), threads=1).preprocess(dark)[0]
    fixed = Segmenter(make_model(), threads=1, bit_depth=12).preprocess(dark)[0]
    assert inferred[0, 0, 0, 0] == round(300 * 255 / 1023)  # looks like 10-bit data
    assert fixed[0, 0, 0, 0] == round(300 * 255 / 4095)
    with pytest.raises(MaskrtError, match="bit depth"):
        Segmenter(make_model(), bit_depth=20).preprocess(dark)


def test_spin_off_gives_the_same_instances(make_model) -> None:
    """``spin=False`` (used when rows share the cores in turns) only changes how idle ONNX Runtime threads
    wait: the session says so, and the results are the same."""
    path = make_model()
    frame = np.zeros((256, 512, 3), np.uint8)
    quiet = Segmenter(path, backend="onnxruntime", threads=2, spin=False)
    default = Segmenter(path, backend="onnxruntime", threads=2)
    opts = quiet.backend.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    a, b = quiet(frame), default(frame)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
