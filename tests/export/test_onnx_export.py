"""The exported ONNX file: static contract, metadata, TensorRT check, ONNX Runtime parity."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from maskrt.artifact import INPUT_NAME, OUTPUT_DTYPES, OUTPUT_NAMES, ArtifactMeta
from maskrt.export.check import check_model
from maskrt.export.metadata import make_meta, props_of, read_meta
from maskrt.export.onnx_export import export_onnx
from maskrt.export.parity import ParityRules
from maskrt.export.verify import check_parity, ort_session, run_ort
from maskrt.export.wrapper import ExportWrapper
from maskrt.train.models import ModelRecipe

ONNX_TYPES = {"float32": onnx.TensorProto.FLOAT, "int32": onnx.TensorProto.INT32, "uint8": onnx.TensorProto.UINT8}


def _dims(vi: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]


def test_graph_io_is_static_and_matches_contract(lite_export):
    model = onnx.load(str(lite_export.path))
    d, m, s = lite_export.meta.max_det, lite_export.meta.mask_size, lite_export.meta.input_size
    (inp,) = model.graph.input
    assert inp.name == INPUT_NAME and _dims(inp) == [1, s[0], s[1], 3]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    expected = {"boxes": [1, d, 4], "scores": [1, d], "labels": [1, d], "masks": [1, d, m, m], "num_dets": [1]}
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    for out in model.graph.output:
        assert _dims(out) == expected[out.name], out.name
        assert out.type.tensor_type.elem_type == ONNX_TYPES[OUTPUT_DTYPES[out.name]], out.name
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Loop", "If", "Scan"}
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    nms = [n for n in model.graph.node if n.op_type == "NonMaxSuppression"]
    assert len(nms) == 2 and all(inits[n.input[2]].tolist() == [5000] for n in nms)  # not INT64_MAX
    onnx.checker.check_model(model)


def test_compatibility_check_passes_on_our_export(lite_export):
    assert check_model(lite_export.path) == []


def test_metadata_round_trips(lite_export):
    meta = read_meta(lite_export.path)
    assert meta == ArtifactMeta.from_props(props_of(onnx.load(str(lite_export.path))))
    assert meta.class_names == ["bubble", "drop"]
    assert meta.input_size == (128, 128) and meta.max_det == lite_export.meta.max_det and meta.mask_size == 28
    assert meta.metrics == {"mask_mAP": 0.42, "box_mAP50": 0.9}
    assert meta.mean == tuple(lite_export.recipe.mean) and meta.precision == "fp32" and meta.arch == "lite"


def test_onnxruntime_matches_pytorch_on_varied_images(lite_export, scene_images):
    gate, agree = check_parity(lite_export.path, lite_export.wrapper, scene_images, ParityRules())
    s = gate.summary()
    assert s["passed"], gate.failures()
    assert s["detections"] > 20 and s["matched"] > 0  # the comparison had something to compare
    assert s["min_box_iou"] >= 0.99 and s["min_mask_iou"] >= 0.98 and s["max_score_diff"] <= 1e-3
    # vs the plain model([image]) with torchvision's own paste (reported by `maskrt export`, not gated)
    assert agree is not None
    a = agree.summary()
    assert a["missing"] == 0 and a["extra"] == 0 and a["min_box_iou"] >= 0.99 and a["mean_mask_iou"] >= 0.98


@pytest.fixture(scope="module")
def blind_export(tmp_path_factory, make_model):
    """A model whose class logits are so low that it never detects anything (64 px, not simplified: fast)."""
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=64)
    wrapper = ExportWrapper(make_model(recipe, bias=-40.0), (64, 64), 10, recipe.mean, recipe.std)
    path = tmp_path_factory.mktemp("blind") / "blind.onnx"
    export_onnx(wrapper, make_meta(recipe, (64, 64), 10), path, simplify=False)
    return path


def test_unsimplified_export_is_also_tensorrt_compatible(blind_export):
    """The traced graph itself is static (onnxslim only makes it smaller)."""
    assert check_model(blind_export) == []


def test_zero_detections_give_zero_padded_outputs(blind_export):
    session = ort_session(blind_export)
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    boxes, scores, labels, masks, num = run_ort(session, image)
    assert num.tolist() == [0]
    assert boxes.shape == (1, 10, 4) and masks.shape == (1, 10, 28, 28)
    assert not boxes.any() and not scores.any() and not labels.any() and not masks.any()


def test_rejects_wrong_suffix(lite_export, tmp_path):
    from maskrt.errors import MaskrtError

    with pytest.raises(MaskrtError, match=r"\.onnx"):
        export_onnx(lite_export.wrapper, lite_export.meta, tmp_path / "model.bin")
    assert not (tmp_path / "model.bin").exists()


@pytest.mark.parametrize("counts", [(5, 0, 7, 1), (0, 0, 0, 3), (4, 4, 4, 4)])
def test_level_merge_is_torchvisions_merge(counts):
    """The Concat+Gather merge of the multi-scale RoIAlign equals torchvision's scatter merge exactly
    (RoIs interleaved across levels, empty levels included)."""
    import torch
    from torchvision.ops import poolers

    from maskrt.export.onnx_export import merge_levels_gather

    g = torch.Generator().manual_seed(sum(counts))
    levels = torch.cat([torch.full((c,), lv) for lv, c in enumerate(counts)])
    levels = levels[torch.randperm(len(levels), generator=g)]
    per_level = [torch.randn(c, 3, 2, 2, generator=g) for c in counts]
    assert torch.equal(merge_levels_gather(levels, per_level), poolers._onnx_merge_levels(levels, per_level))


def test_roi_pooling_has_no_full_size_scatter(lite_export):
    """The multi-scale RoIAlign merge is one Gather per pooler, not a 4-D ScatterElements per level
    (which cost about 10% of an r50-fpn frame in ONNX Runtime)."""
    model = onnx.load(str(lite_export.path))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("RoiAlign") == 8  # 2 poolers x 4 levels
    assert "ScatterElements" not in ops or ops.count("ScatterElements") <= 2
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in inferred.graph.value_info}
    for node in model.graph.node:
        if node.op_type == "ScatterElements":
            assert ranks.get(node.output[0], 1) == 1, node.name


def test_rpn_keeps_its_top_anchors_before_decoding_them_with_the_same_proposals(lite_export, scene_images):
    """The export's RPN (:func:`rpn_select_then_decode`) gives torchvision's proposals bit for bit, a batch of
    two included, and its graph decodes only the anchors each level keeps, not every anchor."""
    import torch
    from torchvision.models.detection.image_list import ImageList
    from torchvision.models.detection.rpn import RegionProposalNetwork

    from maskrt.export.onnx_export import static_export_patches

    torchvisions = RegionProposalNetwork.forward
    wrapper = lite_export.wrapper
    rpn = wrapper.model.rpn
    x = wrapper.preprocess(torch.from_numpy(np.stack(scene_images[:2])))
    images = ImageList(x, [wrapper.input_size] * 2)
    with torch.no_grad(), static_export_patches(max(wrapper.input_size)):
        features = wrapper.model.backbone(x)
        expected, _ = torchvisions(rpn, images, features)
        got, losses = rpn(images, features)
    assert losses == {} and len(got) == 2
    for e, g in zip(expected, got):
        assert e.shape[0] > 10 and torch.equal(e, g)

    model = onnx.shape_inference.infer_shapes(onnx.load(str(lite_export.path)))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.value_info}
    exps = [n for n in model.graph.node if n.op_type == "Exp" and n.name.startswith("/rpn/")]
    levels = len(features)
    assert len(exps) == 2 * levels  # widths and heights, once per level
    kept = levels * rpn.pre_nms_top_n()
    for node in exps:
        assert int(np.prod(shapes[node.input[0]])) <= kept, node.name


def test_rois_pooled_in_level_order_need_no_gather_and_a_batch_keeps_the_merge(lite_export, scene_images, tmp_path):
    """One image: each pooler's per-level RoIAlign results are concatenated straight into its head (RoIs pooled in
    level order), with the same detections as PyTorch (the parity tests above). A batch of two, whose RoIs are not
    in one level order, keeps the Gather merge and gives each image the single-image export's detections."""
    from maskrt.export.onnx_export import trace_to_onnx

    model = onnx.load(str(lite_export.path))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    consumers: dict[str, list[str]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.op_type)
    for pooler in ("box_roi_pool", "mask_roi_pool"):
        (merge,) = [n for n in model.graph.node if n.op_type == "Concat" and f"/{pooler}/" in n.name
                    and all(producers.get(i) == "RoiAlign" for i in n.input)]
        assert len(merge.input) == 4 and "Gather" not in consumers[merge.output[0]], pooler

    path = tmp_path / "batch2.onnx"
    trace_to_onnx(lite_export.wrapper, path, batch=2)
    batch = ort_session(path).run(None, {INPUT_NAME: np.stack(scene_images[:2])})
    single = ort_session(lite_export.path)
    for i, image in enumerate(scene_images[:2]):
        one = single.run(None, {INPUT_NAME: image[None]})
        assert int(one[4][0]) > 0 and int(batch[4][i]) == int(one[4][0])
        for a, b in zip(one[:4], batch[:4]):
            assert np.allclose(a[0], b[i], atol=1e-4)
