"""A capture plan: a TOML file -> validated, ordered points, a dry-run summary, an ETA and a disk estimate.

Shape of a plan (see examples/*.toml and docs/capture.md)::

    [session]             scene, operator (required), notes, name
    [rig]                 camera = "sim" | serial | port;  slider = "emulator" | port | "none";  speed
    [axes]                aperture/shutter/iso/kelvin/white_balance/focus/focal = [labels...]
                          slider_mm = [positions...]                       (stills)
    [trajectory]          start_mm, end_mm, speed_mm_s, frames, fps        (passes)
    [order]               mode = "stills"|"passes", loop = [outer..inner], snake = [axes], repeat
    [exposure]            constant = true, compensate = ["shutter", "iso"], reference = {..}, tolerance_stops
    [pairs]               reference = {aperture = "f/16", iso = "100"}
    [costs]               capture_s, set_s, settle_s, home_s, bytes_per_still, bytes_per_clip_frame

One module per job, as bluesky separates plans from plan patterns: `model` (what a plan is), `parse`
(TOML -> Plan, every problem with its line), `check` (against the real camera and slider), `expand`
(constant exposure, loop order, snaking -> points), `summary` (ETA, disk), `identity` (the plan's key by
meaning and what an edit changed).
"""

from .check import check_plan
from .expand import TYPICAL_CHOICES, compensated_settings, expand, exposure_stops, exposure_value
from .identity import describe_changes, plan_key, substance
from .model import (EXPOSURE_ROLES, MODES, REPEAT_AXIS, SLIDER_AXIS, Costs, ExposureRule, Plan, PlanError, Point,
                    Problem, Trajectory)
from .parse import load_plan, parse_plan, pass_coverage_problem
from .summary import (Summary, bytes_per_point, count_setting_changes, format_bytes, format_duration,
                      format_summary, summarize)

__all__ = [
    "EXPOSURE_ROLES", "MODES", "REPEAT_AXIS", "SLIDER_AXIS", "TYPICAL_CHOICES", "Costs", "ExposureRule", "Plan",
    "PlanError", "Point", "Problem", "Summary", "Trajectory", "bytes_per_point", "check_plan",
    "compensated_settings", "count_setting_changes", "describe_changes", "expand", "exposure_stops",
    "exposure_value", "format_bytes", "format_duration", "format_summary", "load_plan", "parse_plan",
    "pass_coverage_problem", "plan_key", "substance", "summarize",
]
