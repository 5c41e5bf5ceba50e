"""`maskrt export --graph-conf`: the graph drops low-scoring detections before the mask head, nothing above it.

A real isolated-bubble frame at 300 detections sends about 200 RoIs through the mask head, of which about 105 score
0.5 or more; a dense frame fills all 300 for about 85. A graph threshold near the runtime's keeps every detection the
user sees and runs the mask head on fewer RoIs.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from maskrt.artifact import GRAPH_SCORE_THRESHOLD, ArtifactMeta
from maskrt.cli import main
from maskrt.export.metadata import read_meta
from maskrt.export.scenes import synthetic_scenes
from maskrt.train.checkpoint import save_checkpoint
from maskrt.train.models import ModelRecipe

SIZE = 64
GRAPH = 0.6


@pytest.fixture(scope="module")
def exports(tmp_path_factory, make_model):
    """The same checkpoint exported with the default graph threshold and with --graph-conf 0.6 (--conf 0.7)."""
    tmp = tmp_path_factory.mktemp("graph-conf")
    recipe = ModelRecipe(arch="lite", classes=["bubble", "drop"], image_size=SIZE)
    ckpt = tmp / "tiny.pt"
    save_checkpoint(ckpt, make_model(recipe), recipe, metrics={})
    paths = {}
    for g in (GRAPH_SCORE_THRESHOLD, GRAPH):
        out = tmp / f"g{g}.onnx"
        code = main(["export", str(ckpt), "--imgsz", str(SIZE), "--max-det", "100", "--out", str(out),
                     "--conf", "0.7", "--graph-conf", str(g), "--parity-images", "2"])
        assert code == 0
        paths[g] = out
    return ckpt, paths


def _rows(path, image):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {session.get_inputs()[0].name: image[None]})))
    n = int(np.asarray(out["num_dets"]).ravel()[0])
    return out["boxes"][0][:n], out["scores"][0][:n], out["labels"][0][:n], out["masks"][0][:n]


def test_graph_conf_keeps_every_detection_above_it_and_drops_the_rest(exports):
    _, paths = exports
    assert read_meta(paths[GRAPH]).graph_score_threshold == GRAPH
    assert read_meta(paths[GRAPH_SCORE_THRESHOLD]).graph_score_threshold == GRAPH_SCORE_THRESHOLD
    dropped = 0
    for scene in synthetic_scenes(3, (SIZE, SIZE), seed=4):
        b0, s0, l0, m0 = _rows(paths[GRAPH_SCORE_THRESHOLD], scene.image)
        b1, s1, l1, m1 = _rows(paths[GRAPH], scene.image)
        keep = s0 >= GRAPH
        assert (s1 >= GRAPH).all()  # nothing below the graph threshold comes out
        assert len(s1) == int(keep.sum())  # and nothing above it is lost
        np.testing.assert_allclose(s1, s0[keep], atol=1e-5)
        np.testing.assert_allclose(b1, b0[keep], atol=1e-3)
        assert (l1 == l0[keep]).all()
        np.testing.assert_allclose(m1, m0[keep], atol=1e-4)
        dropped += len(s0) - len(s1)
    assert dropped > 0  # the model scores detections on both sides of the threshold: RoIs were saved


def test_runtime_warns_when_asked_below_the_graph_threshold(exports, caplog):
    from maskrt.runtime import Segmenter

    _, paths = exports
    with caplog.at_level(logging.WARNING):
        Segmenter(paths[GRAPH], backend="onnxruntime", conf=0.7).close()
    assert "--graph-conf" not in caplog.text
    with caplog.at_level(logging.WARNING):
        Segmenter(paths[GRAPH], backend="onnxruntime", conf=0.2).close()
    assert "below 0.60 inside its graph" in caplog.text and "lower --graph-conf" in caplog.text


def test_default_threshold_is_not_written_and_older_artifacts_read_as_default():
    meta = ArtifactMeta(arch="lite", class_names=["bubble"], input_size=(64, 64))
    props = meta.to_props()
    assert "maskrt.graph_score_threshold" not in props  # artifacts exported before the option are unchanged
    assert ArtifactMeta.from_props(props).graph_score_threshold == GRAPH_SCORE_THRESHOLD
    raised = ArtifactMeta(arch="lite", class_names=["bubble"], input_size=(64, 64), graph_score_threshold=0.3)
    assert ArtifactMeta.from_props(raised.to_props()).graph_score_threshold == 0.3


def test_bad_graph_conf_is_one_line_exit_2(exports, tmp_path, capsys):
    ckpt, paths = exports
    assert main(["export", str(ckpt), "--imgsz", str(SIZE), "--graph-conf", "0.8", "--out", str(tmp_path / "a.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--graph-conf 0.8 is above" in err and "--conf 0.5" in err
    assert main(["export", str(paths[GRAPH_SCORE_THRESHOLD]), "--graph-conf", "0.3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "g0.05.onnx" in err and "works with --int8" in err
    assert main(["export", str(paths[GRAPH_SCORE_THRESHOLD]), "--int8", "--graph-conf", "0.75",
                 "--out", str(tmp_path / "b.onnx")]) == 2  # above the model's own conf (0.7)
    assert "must be in [0, 0.7]" in capsys.readouterr().err
    assert not (tmp_path / "a.onnx").exists() and not (tmp_path / "b.onnx").exists()


def test_an_exported_artifact_gets_the_threshold_without_its_checkpoint(exports, tmp_path):
    """Rewriting the graph's score constant gives what tracing with --graph-conf gives, and its INT8 copy keeps it."""
    import onnx

    from maskrt.errors import MaskrtError
    from maskrt.export.int8 import SCORE_GATE_NODE, set_graph_score_threshold

    _, paths = exports
    model = onnx.load(str(paths[GRAPH_SCORE_THRESHOLD]))
    set_graph_score_threshold(model, GRAPH, paths[GRAPH_SCORE_THRESHOLD])
    rewritten = tmp_path / "rewritten.onnx"
    onnx.save(model, str(rewritten))
    assert read_meta(rewritten).graph_score_threshold == GRAPH
    for scene in synthetic_scenes(2, (SIZE, SIZE), seed=4):
        for a, b in zip(_rows(rewritten, scene.image), _rows(paths[GRAPH], scene.image)):
            np.testing.assert_allclose(a, b, atol=1e-5)

    edited = onnx.load(str(paths[GRAPH_SCORE_THRESHOLD]))
    next(n for n in edited.graph.node if n.name == SCORE_GATE_NODE).name = "renamed"
    with pytest.raises(MaskrtError, match="score threshold node was not found"):
        set_graph_score_threshold(edited, GRAPH)

    out = tmp_path / "q.onnx"
    assert main(["export", str(paths[GRAPH_SCORE_THRESHOLD]), "--int8", "--graph-conf", str(GRAPH), "--out",
                 str(out), "--calib-images", "2", "--int8-heldout", "0", "--parity-images", "1"]) == 0
    meta = read_meta(out)
    assert meta.precision == "int8" and meta.graph_score_threshold == GRAPH
    scene = synthetic_scenes(1, (SIZE, SIZE), seed=4)[0]
    assert (_rows(out, scene.image)[1] >= GRAPH).all()
    assert read_meta(paths[GRAPH_SCORE_THRESHOLD]).graph_score_threshold == GRAPH_SCORE_THRESHOLD  # source kept
