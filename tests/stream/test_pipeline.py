"""The threaded pipeline through the Python API: order, ground truth, tracking, live drops and reopening."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.runtime.stream import Stream, StreamOptions, stream

VOID_TOL = 1e-9  # lossless PNG frames: the thresholding segmenter recovers the drawn discs exactly
VOID_TOL_VIDEO = 0.003  # MJPG video: JPEG ringing moves a few edge pixels


def test_image_folder_every_frame_in_order_matches_ground_truth(
    image_folder: tuple[Path, Any], threshold_segmenter: type
) -> None:
    folder, seq = image_folder
    s = Stream(threshold_segmenter(), str(folder))
    results = list(s)
    assert [r.index for r in results] == list(range(len(seq.frames)))
    assert [r.stats["count"] for r in results] == seq.counts
    assert np.allclose([r.stats["void_fraction"] for r in results], seq.void, atol=VOID_TOL)
    summary = s.summary
    assert (summary["frames_in"], summary["processed"], summary["dropped"]) == (len(seq.frames),) * 2 + (0,)
    assert summary["end_reason"] == "end of source"
    assert {"capture", "infer", "postprocess", "measure", "output", "latency"} <= set(summary["stages_ms"])


def test_video_file_and_the_stream_function(video_file: tuple[Path, Any], threshold_segmenter: type) -> None:
    path, seq = video_file
    got = []
    for frame, inst, stats in stream(threshold_segmenter(), path, um_per_px=5.0):
        assert frame.shape == (160, 160, 3)
        got.append(
            (stats["frame"], len(inst), stats["count"], stats["void_fraction"], stats["mean_diameter_um"])
        )
    assert [g[0] for g in got] == list(range(len(seq.frames)))
    assert [g[2] for g in got] == seq.counts
    assert np.allclose([g[3] for g in got], seq.void, atol=VOID_TOL_VIDEO)
    # time comes from the file's frame rate
    assert got[0][4] is not None and got[0][4] > 5.0 * 10  # discs are >= 12 px across


def test_tracking_keeps_ids_on_the_rendered_sequence(
    image_folder: tuple[Path, Any], threshold_segmenter: type
) -> None:
    folder, seq = image_folder
    per_object: dict[int, list[int]] = {}
    for r in Stream(threshold_segmenter(), str(folder), StreamOptions(track=True, fps_physical=1000)):
        cents = np.array([(m["centroid_x_px"], m["centroid_y_px"]) for m in r.measurements]).reshape(-1, 2)
        for x, y, obj in seq.centres[r.index]:
            k = int(np.argmin(np.hypot(cents[:, 0] - x, cents[:, 1] - y)))
            per_object.setdefault(obj, []).append(int(r.track_ids[k]))
        assert [m["track_id"] for m in r.measurements] == r.track_ids.tolist()
        assert r.stats["time_s"] == pytest.approx(r.index / 1000)
    switches = sum(sum(a != b for a, b in itertools.pairwise(ids)) for ids in per_object.values())
    assert switches <= 1, per_object  # objects can vanish behind the keep-apart rule and come back
    assert len({ids[0] for ids in per_object.values()}) == len(per_object)


def test_roi_restricts_counts_and_void_fraction(
    image_folder: tuple[Path, Any], threshold_segmenter: type
) -> None:
    folder, seq = image_folder
    roi = (0, 0, 80, 160)  # left half
    for r in Stream(threshold_segmenter(), str(folder), StreamOptions(roi=roi)):
        expected = sum(1 for x, _, _ in seq.centres[r.index] if x < 80)
        assert abs(r.stats["count"] - expected) <= sum(
            1 for x, _, _ in seq.centres[r.index] if abs(x - 80) < 1
        )
        union = r.instances.masks.any(axis=0) if len(r.instances) else np.zeros((160, 160), bool)
        assert r.stats["void_fraction"] == pytest.approx(union[:, :80].mean())


def test_stop_finishes_frames_in_flight(image_folder: tuple[Path, Any], threshold_segmenter: type) -> None:
    folder, _ = image_folder
    s = Stream(threshold_segmenter(delay_s=0.01), str(folder), StreamOptions(loop=True))
    seen = []
    for r in s:
        seen.append(r.index)
        if len(seen) == 10:
            s.stop()
    assert seen == list(range(len(seen))) and 10 <= len(seen) <= 10 + 6  # only what was already queued
    assert s.summary["processed"] == len(seen) and s.summary["end_reason"] == "stopped"


def test_live_source_faster_than_inference_drops_frames_without_lag(
    mjpeg_server: type, sequence: Any, threshold_segmenter: type
) -> None:
    """A real MJPEG-over-HTTP stream at ~200 fps into a 25 fps segmenter: the newest frame wins."""
    with mjpeg_server(sequence.frames, fps=200, per_connection=240) as server:
        s = Stream(threshold_segmenter(delay_s=0.04), server.url, StreamOptions(max_failures=0))
        lags = []
        for r in s:
            lags.append(
                s.capture.frames_in - 1 - r.index
            )  # frames captured after this one, while it was in flight
    summary = s.summary
    assert summary["live"] and summary["dropped"] > 0
    assert summary["processed"] + summary["dropped"] <= summary["frames_in"]
    assert summary["processed"] < summary["frames_in"] / 2
    # latency does not grow: the backlog seen by late frames is no larger than early on (queues stay short)
    half = len(lags) // 2
    assert max(lags[half:-1] or [0]) <= max(lags[:half]) + 10
    assert max(lags[:-1]) < summary["frames_in"] / 3


def test_live_source_failing_mid_run_is_reopened_then_given_up(
    mjpeg_server: type, sequence: Any, threshold_segmenter: type
) -> None:
    """The server hangs up after 8 frames per connection, 3 times, then refuses: 2 reopens, then a clean end."""
    with mjpeg_server(sequence.frames, fps=100, per_connection=8, max_connections=3) as server:
        opts = StreamOptions(max_failures=2, backoff_s=0.05)
        s = Stream(threshold_segmenter(), server.url, opts)
        results = list(s)
        connections = server.connections
    summary = s.summary
    assert summary["reopens"] == 2 and connections >= 4
    assert summary["source_lost"] and "no frames after 2 reopen attempts" in summary["end_reason"]
    assert summary["processed"] == len(results) > 8


def test_source_that_never_opens_fails_before_threads_start(threshold_segmenter: type) -> None:
    with pytest.raises(MaskrtError, match="could not open.*gave up after 2 attempts"):  # first try + 1 retry
        Stream(threshold_segmenter(), "http://127.0.0.1:9/none.mjpg", StreamOptions(max_failures=1, backoff_s=0.01))
    with pytest.raises(MaskrtError, match="unknown source scheme"):
        stream(threshold_segmenter(), "webcam://0")


def test_a_failing_stage_raises_in_the_caller(
    image_folder: tuple[Path, Any], threshold_segmenter: type
) -> None:
    seg = threshold_segmenter()

    def broken(*_: Any) -> Any:
        raise ValueError("model exploded")

    seg.infer = broken
    with pytest.raises(ValueError, match="model exploded"):
        list(Stream(seg, str(image_folder[0])))


def test_realtime_file_playback_drops_what_inference_cannot_keep_up_with(
    image_folder: tuple[Path, Any], threshold_segmenter: type
) -> None:
    folder, seq = image_folder
    s = Stream(threshold_segmenter(delay_s=0.03), str(folder), StreamOptions(realtime=True, fps=200))
    indices = [r.index for r in s]
    assert (
        indices == sorted(set(indices)) and indices[-1] == len(seq.frames) - 1
    )  # in order; the last frame kept
    assert s.summary["dropped"] > 0 and s.summary["dropped"] + len(indices) == len(seq.frames)


def test_stream_as_context_manager_releases_an_unused_source(
    image_folder: tuple[Path, Any], threshold_segmenter: type
) -> None:
    closed = []
    with Stream(threshold_segmenter(), str(image_folder[0])) as s:
        s.capture.source.close = lambda: closed.append(True)  # type: ignore[union-attr]
    assert closed == [True] and s.capture.source is None
