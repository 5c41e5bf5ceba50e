"""Can fewer multiplications beat the arithmetic floor? Winograd F(2x2, 3x3) in ONNX operators, per layer.

``compute_floor.py`` shows ONNX Runtime already runs the exported ``r50-fpn`` convolutions near the
best MAC rate it reaches on this CPU, so the only way left to a faster frame is less arithmetic for
the same result. Winograd's minimal filtering F(2x2, 3x3) computes a 3x3, stride-1 convolution with
2.25x fewer multiplications (16 products per 2x2 output tile instead of 36), at the price of
transforming the input and output tiles. ONNX Runtime's CPU convolutions do not use it, and an
exported model can only use it by spelling it in ONNX operators. This script measures, for every
3x3 stride-1 convolution shape an ``r50-fpn`` frame at 512x512 runs (backbone, FPN, RPN head, mask
head with 100 detections), ONNX Runtime's direct ``Conv`` against two such spellings:

* ``slices``: tiles cut with strided ``Slice``, transforms as ``Add``/``Sub``, 16 ``MatMul`` products;
* ``convs``: input transform as a grouped 4x4 stride-2 ``Conv``, the 16 products as one grouped 1x1
  ``Conv``, output transform as a grouped 2x2 stride-2 ``ConvTranspose`` (two channel ``Transpose``).

Both agree with the direct convolution to ~1e-6 relative. The frame-level estimate takes, for every
layer, the fastest of the three and reports the time it would save on the frame and the
eager / ours ratio that saving would give against ``compute_floor.json``'s measurement.

Usage:
    .venv/bin/python benchmarks/winograd_probe.py [--iters 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_vs_eager import RESULTS

from maskrt.export.onnx_export import quiet_exporter
from maskrt.export.verify import ort_session
from maskrt.runtime.bench.sysinfo import cpu_model

B_T = torch.tensor([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=torch.float32)
G = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float32)
A_T = torch.tensor([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=torch.float32)

# (name, N, C, H, W, count per frame): r50-fpn at 512x512, 100 detections; first blocks of layer2-4
# have a stride-2 3x3 convolution (not a Winograd F(2x2, 3x3) case) and are left out
R50_FPN_512 = [
    ("backbone layer1 3x3", 1, 64, 128, 128, 3),
    ("backbone layer2 3x3", 1, 128, 64, 64, 3),
    ("backbone layer3 3x3", 1, 256, 32, 32, 5),
    ("backbone layer4 3x3", 1, 512, 16, 16, 2),
    ("FPN P2 3x3 / RPN P2", 1, 256, 128, 128, 2),
    ("FPN P3 3x3 / RPN P3", 1, 256, 64, 64, 2),
    ("FPN P4 3x3 / RPN P4", 1, 256, 32, 32, 2),
    ("FPN P5 3x3 / RPN P5", 1, 256, 16, 16, 2),
    ("RPN P6", 1, 256, 8, 8, 1),
    ("mask head 3x3 (100 RoIs)", 100, 256, 14, 14, 4),
]


def filter_transform(weight: torch.Tensor) -> torch.Tensor:
    """``G g G^T`` of every 3x3 filter: ``[O, I, 3, 3]`` -> ``[16, O, I]`` (tile position first)."""
    u = torch.einsum("ak,oikl,bl->aboi", G, weight, G)
    return u.reshape(16, weight.shape[0], weight.shape[1]).contiguous()


class WinogradSlices(nn.Module):
    """F(2x2, 3x3) with strided slices, element-wise transforms and a batched MatMul."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.register_buffer("u", filter_transform(conv.weight.detach()))
        self.register_buffer("bias", conv.bias.detach().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        th, tw = h // 2, w // 2
        xp = F.pad(x, (1, 1, 1, 1))
        r = [xp[:, :, k:k + 2 * th:2, :] for k in range(4)]
        tiles = []
        for row in (r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]):
            cc = [row[..., k:k + 2 * tw:2] for k in range(4)]
            tiles += [cc[0] - cc[2], cc[1] + cc[2], cc[2] - cc[1], cc[1] - cc[3]]
        v = torch.stack(tiles).permute(0, 2, 1, 3, 4).reshape(16, c, n * th * tw)
        m = torch.matmul(self.u, v).reshape(16, -1, n, th, tw).permute(0, 2, 1, 3, 4)
        t0 = [m[j] + m[4 + j] + m[8 + j] for j in range(4)]
        t1 = [m[4 + j] - m[8 + j] - m[12 + j] for j in range(4)]
        y = torch.stack([torch.stack([t0[0] + t0[1] + t0[2], t0[1] - t0[2] - t0[3]]),
                         torch.stack([t1[0] + t1[1] + t1[2], t1[1] - t1[2] - t1[3]])])
        return y.permute(2, 3, 4, 0, 5, 1).reshape(n, -1, h, w) + self.bias


class WinogradConvs(nn.Module):
    """F(2x2, 3x3) as convolutions: grouped 4x4/2 input transform, grouped 1x1 product, 2x2/2 ConvTranspose."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        out_c, in_c = conv.weight.shape[:2]
        self.out_c = out_c
        u = filter_transform(conv.weight.detach())
        self.register_buffer("w_product", u.reshape(16 * out_c, in_c, 1, 1))
        b = torch.einsum("ai,bj->abij", B_T, B_T).reshape(16, 1, 4, 4)
        self.register_buffer("w_in", b.repeat(in_c, 1, 1, 1).contiguous())
        a = torch.einsum("ia,jb->abij", A_T, A_T).reshape(16, 1, 2, 2)
        self.register_buffer("w_out", a.repeat(out_c, 1, 1, 1).contiguous())
        self.register_buffer("bias", conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        th, tw = h // 2, w // 2
        v = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.w_in, stride=2, groups=c)  # channels (c, tile pos)
        v = v.reshape(n, c, 16, th, tw).transpose(1, 2).reshape(n, 16 * c, th, tw)
        m = F.conv2d(v, self.w_product, groups=16)  # channels (tile pos, o)
        m = m.reshape(n, 16, self.out_c, th, tw).transpose(1, 2).reshape(n, 16 * self.out_c, th, tw)
        return F.conv_transpose2d(m, self.w_out, self.bias, stride=2, groups=self.out_c)


def time_onnx(module: nn.Module, x: torch.Tensor, iters: int, threads: int) -> tuple[float, np.ndarray]:
    """Median ms of ``module`` exported to ONNX and run in ONNX Runtime, and its output."""
    with tempfile.TemporaryDirectory() as tmp, quiet_exporter(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "layer.onnx"
        torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=17)
        sess = ort_session(path, threads)
    feed = {sess.get_inputs()[0].name: x.numpy()}
    out = sess.run(None, feed)[0]
    sess.run(None, feed)  # second warm-up run
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import onnxruntime

    torch.manual_seed(0)
    rows = []
    for name, n, c, h, w, count in R50_FPN_512:
        conv = nn.Conv2d(c, c, 3, padding=1).eval()
        x = torch.randn(n, c, h, w)
        with torch.no_grad():
            ref = conv(x).numpy()
        row: dict[str, object] = {"layer": name, "shape": [n, c, h, w], "per_frame": count,
                                  "gmac": round(n * c * c * h * w * 9 / 1e9, 3)}
        times = {}
        for label, module in (("direct", conv), ("slices", WinogradSlices(conv)), ("convs", WinogradConvs(conv))):
            ms, out = time_onnx(module.eval(), x, args.iters, args.threads)
            err = float(np.abs(out - ref).max() / np.abs(ref).max())
            if err > 1e-4:
                raise SystemExit(f"{label} Winograd disagrees with the direct convolution on {name}: {err:.1e}")
            times[label] = ms
            row[f"{label}_ms"] = round(ms, 2)
            if label != "direct":
                row[f"{label}_rel_err"] = float(f"{err:.1e}")
        best = min(times, key=lambda k: times[k])
        row["best"] = best
        row["saving_ms_per_frame"] = round((times["direct"] - times[best]) * count, 1)
        rows.append(row)
        print(f"{name:>26} {row['shape']!s:>20}: direct {times['direct']:7.1f} ms, slices {times['slices']:7.1f} ms "
              f"({times['direct'] / times['slices']:.2f}x), convs {times['convs']:7.1f} ms "
              f"({times['direct'] / times['convs']:.2f}x); x{count} per frame", flush=True)

    direct_total = sum(float(r["direct_ms"]) * int(r["per_frame"]) for r in rows)  # type: ignore[arg-type]
    saving = sum(float(r["saving_ms_per_frame"]) for r in rows)  # type: ignore[arg-type]
    result: dict[str, object] = {
        "benchmark": "winograd_probe",
        "machine": f"{platform.machine()} {cpu_model()} ({os.cpu_count()} cores, {args.threads} threads used)",
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "iters": args.iters,
        "direct_3x3_ms_per_frame": round(direct_total, 1),
        "best_saving_ms_per_frame": round(saving, 1),
        "rows": rows,
    }
    floor = RESULTS / "compute_floor.json"
    if floor.exists():
        r50 = [r for r in json.loads(floor.read_text())["rows"] if r["arch"] == "r50-fpn"]
        if r50:
            eager, ours = float(r50[0]["eager_ms_median"]), float(r50[0]["ours_ms_median"])
            result["r50_fpn_eager_ms"] = eager
            result["r50_fpn_ours_ms"] = ours
            result["r50_fpn_ratio_with_best_per_layer"] = round(eager / (ours - saving), 2)
            result["r50_fpn_ratio_now"] = round(eager / ours, 2)
    print(f"3x3 stride-1 convolutions of an r50-fpn frame: {direct_total:.0f} ms direct; the fastest form per layer "
          f"saves {saving:.0f} ms"
          + (f"; eager / ours {result['r50_fpn_ratio_now']}x -> {result['r50_fpn_ratio_with_best_per_layer']}x"
             if "r50_fpn_ratio_now" in result else ""))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "winograd_probe.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
