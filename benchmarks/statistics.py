"""Can each statistic see its control, and does every real sweep order its settings?

    .venv/bin/python benchmarks/statistics.py

1. The ideal effect simulator on the lab-day sweeps (examples/lab-day/*.toml shot on SimCamera(scene="varied"),
   scenes 0, 2, 7, evaluated at 96x64; train/simcheck.py): CorrCoef and slope ratio per axis (target: CorrCoef
   >= 0.95, slope ratio 0.8-1.2).
2. Sweep measurement (capture/sweeps.py) on every sweep of tests/data/real-sweeps: the statistic, its Pearson r
   with the physical value (target |r| >= 0.95, right sign) and the QC flags.
3. Pair QC on the real focus stack: breathing allowed for, and the same pairs shifted by 2 px.
Writes docs/results/benchmarks/statistics.json.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._results import write_result  # noqa: E402
from capture import sweeps  # noqa: E402
from train import simcheck  # noqa: E402

PLANS = {"S": ("exposure", 3), "T": ("colour", 3), "f": ("zoom", 3), "ISO": ("iso", 9), "K": ("bokeh", 3),
         "d_f": ("focus", 3)}
SEEDS = (0, 2, 7)


def simulator_figures() -> dict:
    out = {}
    for axis, (plan, frames) in PLANS.items():
        got = simcheck.simulator_check(simcheck.lab_sweeps([plan], SEEDS, frames=frames))["axes"][axis]
        out[axis] = {"plan": f"examples/lab-day/{plan}.toml", "sweeps": got["sweeps"], "corrcoef": got["corrcoef"],
                     "slope_ratio": got["slope_ratio"],
                     "met": got["corrcoef"] >= 0.95 and got["slope_ratio"] is not None
                     and 0.8 <= got["slope_ratio"] <= 1.2}
        print(axis, out[axis], flush=True)
    return out


def real_figures() -> dict:
    out = {}
    corpus = REPO / "tests" / "data" / "real-sweeps"
    for folder in sorted(p for p in corpus.iterdir() if (p / "sweep.toml").is_file()):
        meta = tomllib.loads((folder / "sweep.toml").read_text())
        files = meta.get("files") or sorted(p.name for p in folder.iterdir()
                                            if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        values = [float(v) for v in meta["values"]]
        reference = values.index(float(meta["reference"])) if float(meta.get("reference", values[0])) in values else 0
        frames = [np.asarray(Image.open(folder / f).convert("RGB")) for f in files]
        r = sweeps.measure_sweep(meta["axis"], values, frames, reference=reference)
        out[folder.name] = {"axis": r.role, "statistic": r.statistic, "values": r.values, "measured": r.measured,
                            "pearson": r.pearson, "expected_sign": r.expected_sign, "flags": r.flags,
                            "scales": [g["scale"] for g in r.registration]}
        print(folder.name, r.pearson, r.flags, flush=True)
    return out


def breathing_figures() -> dict:
    """QC of every pair of the real focus stack focus-cmcguinness against its first frame: alignment with the
    breathing allowed for, the breathing found, and the same pair shifted by 2 px."""
    from capture import clips
    folder = REPO / "tests" / "data" / "real-sweeps" / "focus-cmcguinness"
    stack = [np.asarray(Image.open(folder / f"step{i}.jpg").convert("RGB")) for i in range(6)]
    out = []
    for i, frame in enumerate(stack[1:], 1):
        q = clips.pair_quality([stack[0]], [frame], breathing=True)
        plain = clips.pair_quality([stack[0]], [frame])
        moved = clips.pair_quality([stack[0]], [np.roll(frame, 2, axis=1)], breathing=True)
        out.append({"pair": f"step0-step{i}", "alignment_px": q.alignment_px, "breathing_scale": q.breathing_scale,
                    "flags": q.flags, "without_breathing_alignment_px": plain.alignment_px,
                    "shifted_2px_alignment_px": moved.alignment_px, "shifted_2px_flags": moved.flags})
        print(out[-1], flush=True)
    return {"focus-cmcguinness": out}


def main() -> None:
    figures = {"simulator_on_lab_day_sweeps": simulator_figures(), "real_sweeps": real_figures(),
               "focus_pair_qc": breathing_figures()}
    write_result("statistics", figures, notes="train/simcheck.py (SimCamera varied scenes 0, 2, 7; 192x128 clips "
                 "evaluated at 96x64) and capture/sweeps.py on tests/data/real-sweeps")


if __name__ == "__main__":
    main()
