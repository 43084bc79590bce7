"""Malformed plans (hypothesis-generated) give a PlanError listing problems, never a traceback."""

from __future__ import annotations

import tomli_w
from hypothesis import HealthCheck, given, settings, strategies as st

from capture.plan import PlanError, check_plan, expand, parse_plan, summarize

SECTIONS = ["session", "rig", "axes", "trajectory", "order", "exposure", "pairs", "costs", "extra"]
KEYS = ["scene", "operator", "notes", "camera", "slider", "speed", "aperture", "shutter", "iso", "kelvin",
        "focus", "focal", "slider_mm", "start_mm", "end_mm", "speed_mm_s", "frames", "fps", "mode", "loop",
        "snake", "constant", "compensate", "reference", "tolerance_stops", "capture_s", "bogus"]
LABELS = ["f/2.8", "f/8", "1/60", "1/125", "400", "100", "5600", "1.5", "35", "x", "", "0", "-1", "f/0",
          "stills", "passes", "shutter", "iso", "aperture", "slider", "sim", "emulator", "none", "1\"3"]
scalars = st.one_of(st.sampled_from(LABELS), st.integers(-5, 700), st.floats(allow_nan=True, width=32),
                    st.booleans())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
                      max_leaves=8)
plans = st.dictionaries(st.sampled_from(SECTIONS),
                        st.one_of(st.dictionaries(st.sampled_from(KEYS), values, max_size=6), scalars),
                        max_size=7)
CHOICES = {"aperture": ["f/2.8", "f/8"], "shutter": ["1/60", "1/125"], "iso": ["100", "400"]}


def _exercise(text: str) -> None:
    try:
        plan = parse_plan(text, source="fuzz.toml")
    except PlanError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        return
    problems = check_plan(plan, choices=CHOICES, travel=(0.0, 600.0))
    if not problems:
        summarize(plan, expand(plan, CHOICES))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans)
def test_structured_garbage_never_raises_anything_but_plan_error(data):
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        return  # not representable as TOML (e.g. NaN in some versions)
    _exercise(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]="\'.,#\n abcfiosxz0123456789/_-{}')), max_size=120))
def test_text_garbage_never_raises_anything_but_plan_error(text):
    _exercise(text)
