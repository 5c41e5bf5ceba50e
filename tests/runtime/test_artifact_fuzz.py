"""Property-based fuzz of the artifact metadata reader: nothing but MaskrtError ever escapes it.

Generated metadata: the contract's keys with wrong types and random JSON values, random text where JSON is
expected, values that are not even text, missing keys, unknown keys. Whatever is accepted must satisfy the
contract and survive a round trip. The default suite runs a small example count; ``-m slow`` the full one,
with the same body.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskrt.artifact import KEY_PREFIX, REQUIRED_KEYS, ArtifactMeta, sidecar_props
from maskrt.errors import MaskrtError

VALID = ArtifactMeta(arch="lite", class_names=["bubble", "droplet"], input_size=(128, 128)).to_props()

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-2, 2)
    | st.integers(-5, 300)
    | st.text(max_size=12)
    | st.sampled_from(["NHWC", "BGR", "letterbox", "top-left", "fp16", "fp32", "bubble", "1"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
near_miss = (  # plausible values of the right shape, often just out of range
    st.lists(st.integers(-3, 20000) | st.floats(-1, 2), min_size=0, max_size=4)
    | st.lists(st.text(max_size=4), max_size=3)
)
raw_values = st.one_of(
    json_values.map(json.dumps),  # JSON text of any type
    near_miss.map(json.dumps),
    st.text(max_size=30),  # not JSON at all
    st.just("[" * 5000),  # nesting past any sensible depth
    st.just("9" * 5000),  # an integer past Python's string-conversion limit
    json_values,  # not even text (an engine sidecar read loosely, a caller's mistake)
)
keys = st.sampled_from([KEY_PREFIX + k for k in REQUIRED_KEYS])


@st.composite
def metadata(draw: st.DrawFn) -> Any:
    """Valid metadata with some keys replaced or dropped, random extra keys; sometimes no map at all."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "not-a-map"]))
    if kind == "not-a-map":
        return draw(json_values)
    if kind == "random":
        return draw(st.dictionaries(keys | st.text(max_size=16), raw_values, max_size=len(REQUIRED_KEYS) + 2))
    props: dict[Any, Any] = dict(VALID)
    for key in draw(st.sets(keys, min_size=1, max_size=6)):
        if draw(st.booleans()):
            props[key] = draw(raw_values)
        else:
            props.pop(key)
    props.update(draw(st.dictionaries(st.text(max_size=16) | st.integers(), raw_values, max_size=2)))
    return props


def _check_reader(props: Any) -> None:
    """The property: a MaskrtError naming the source, or metadata that satisfies the contract."""
    try:
        meta = ArtifactMeta.from_props(props, "fuzz.onnx")
    except MaskrtError as exc:
        assert str(exc).startswith("fuzz.onnx: ") and "\n" not in str(exc)
        return
    assert meta.class_names and all(isinstance(c, str) and c for c in meta.class_names)
    assert len(set(meta.class_names)) == len(meta.class_names)
    assert len(meta.input_size) == 2 and all(isinstance(v, int) and v > 0 for v in meta.input_size)
    for t in (meta.score_threshold, meta.mask_threshold):
        assert isinstance(t, float) and 0.0 <= t <= 1.0
    assert len(meta.mean) == 3 and len(meta.std) == 3 and all(s > 0 and math.isfinite(s) for s in meta.std)
    assert all(isinstance(v, int) and not isinstance(v, bool) and v > 0
               for v in (meta.max_det, meta.mask_size, meta.batch_size))
    assert 0 <= meta.pad_value <= 255 and isinstance(meta.metrics, dict)
    again = ArtifactMeta.from_props(meta.to_props())
    assert {**asdict(again), "maskrt_version": ""} == {**asdict(meta), "maskrt_version": ""}
    # the same values as an engine sidecar (JSON values, not JSON text) read the same
    assert ArtifactMeta.from_props(sidecar_props(json.loads(json.dumps(meta.to_props())))) == again


FUZZ = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=200, **FUZZ)
@given(props=metadata())
def test_metadata_reader_raises_only_maskrt_error(props: Any) -> None:
    _check_reader(props)


@pytest.mark.slow
@settings(max_examples=4000, **FUZZ)
@given(props=metadata())
def test_metadata_reader_raises_only_maskrt_error_full(props: Any) -> None:
    _check_reader(props)


def test_the_generator_reaches_accepted_and_refused_metadata() -> None:
    """Guard against a generator that only ever produces garbage (the property would then prove little)."""
    outcomes: set[str] = set()

    @settings(max_examples=300, derandomize=True, **FUZZ)  # the same 300 cases every run: never flaky
    @given(props=metadata())
    def probe(props: Any) -> None:
        try:
            ArtifactMeta.from_props(props)
            outcomes.add("accepted")
        except MaskrtError as exc:
            outcomes.add("bad key" if "metadata key" in str(exc) else "refused")

    probe()
    assert outcomes == {"accepted", "bad key", "refused"}
