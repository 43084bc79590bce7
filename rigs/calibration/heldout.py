"""The held-out test of a real bracket: calibrate on half the frames, predict the other half, and what one curve
could score on the same pairs (`ceiling.py`). Its own module because it builds on both the fit (`response.py`) and
the ceiling, which builds on the fit: kept in either, the two would import each other."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import ceiling as ceiling_mod
from .response import (SRGB, WHAT, CalibrationInputError, Frame, Underdetermined, WorseThanIdeal, bracket_exposures,
                       exposure_prediction_error, fit_response, neighbour_pairs, opencv_curve, pixel_step, prepare)


HELD_OUT_MIN_SPAN = 1.0  # half of a +-1.3 EV bracket spans 1.4 stops


def held_out_error(frames: Sequence[Frame], *, method: str = "debevec", stops: Sequence[float] = (1.0,),
                   predict: Callable | None = None, force: bool = False, ceiling: bool = True) -> dict:
    """The held-out test of a real bracket: calibrate on half the frames (every other exposure), predict the other
    half from their ±1-stop neighbours (the nearest existing ones), and the same with the halves swapped. Errors
    pooled over both: the fitted curve's, the ideal sRGB camera's and OpenCV's bare Debevec fitted on the same
    half, on the same pairs and pixels. A half whose fit is refused (worse than the ideal camera on its own
    frames, or frames too far apart to measure the curve) stores nothing, so the ideal camera predicts for it
    (`refused` in its split; `force` keeps the curve).

    With `ceiling`, also what one curve could score on these very pairs (`ceiling.py`: the oracle curve fitted on
    them, the per-pair pointwise floor, where the error sits) and the bracket's classification: `one-curve`
    (target <= 0.5 x ideal) or why not (then: within 0.1 of OpenCV's ratio, and never worse than ideal)."""
    exposures = bracket_exposures(frames)
    whole = prepare(frames, exposures, WHAT)
    order = [int(i) for i in np.argsort(exposures)]
    step = pixel_step(whole.valid.size)
    sums = {"profile": 0.0, "ideal": 0.0, "opencv": 0.0}
    count, used, splits, stats, starts = 0, 0, [], [], [SRGB]
    for half in (order[0::2], order[1::2]):
        rest = [i for i in order if i not in half]
        try:
            curve, fitted = fit_response([whole.frames[i] for i in half], method=method, force=force,
                                         min_span=HELD_OUT_MIN_SPAN)
            refused, measured = "", fitted["measured_codes"]
        except (WorseThanIdeal, Underdetermined) as exc:   # nothing stored: the toolkit goes on with the ideal camera
            curve, refused = SRGB, type(exc).__name__
            measured = exc.measured if isinstance(exc, Underdetermined) else exc.figures["measured_codes"]
        reference = opencv_curve([frames[i] for i in half], [exposures[i] for i in half])
        pairs = neighbour_pairs(exposures, stops, targets=rest)
        split = {name: exposure_prediction_error(whole, c, pairs=pairs, predict=predict, step=step)
                 for name, c in (("profile", curve), ("ideal", SRGB), ("opencv", reference))}
        for name, result in split.items():
            sums[name] += result["mae"] * result["pixels"]
        count += split["ideal"]["pixels"]
        used += split["ideal"]["pairs"]
        splits.append({"fitted_on": [frames[i].name for i in half], "refused": refused, "measured_codes": measured,
                       **{f"{k}_mae": v["mae"] for k, v in split.items()}})
        if ceiling:
            stats.append(ceiling_mod.pair_stats(whole, pairs, step=step))
            starts += [curve, reference]
            if refused:          # the oracle may start anywhere: from the curve the refusal kept out, too
                starts.append(fit_response([whole.frames[i] for i in half], method=method, force=True,
                                           min_span=HELD_OUT_MIN_SPAN)[0])
    profile, ideal, opencv = (sums[k] / count for k in ("profile", "ideal", "opencv"))
    out = {"profile_mae": profile, "ideal_mae": ideal, "opencv_mae": opencv, "ratio": profile / ideal,
           "opencv_ratio": opencv / ideal, "pairs": used, "pixels": count, "splits": splits}
    if ceiling:           # and from the fits on every frame (the oracle is fitted on the held-out pairs anyway)
        starts.append(opencv_curve(frames, exposures))
        try:
            starts.append(fit_response(frames, method=method, force=True)[0])
        except CalibrationInputError:        # the whole bracket fails a check its halves passed: no such start
            pass
        out["ceiling"] = ceiling_mod.measure(whole, ceiling_mod.merge(*stats), starts, predict=predict, step=step)
        out["meets"] = ceiling_mod.meets(out["ceiling"], out["ratio"], out["opencv_ratio"])
    return out
