"""The dry-run summary: points, frames, setting changes, moves, ETA and disk estimate from per-operation costs."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Costs, Plan, Point


@dataclass(frozen=True)
class Summary:
    points: int
    captures: int
    clips: int
    setting_changes: int
    moves: int
    travel_mm: float
    seconds: float
    bytes: float
    order: str
    costs: Costs


def count_setting_changes(points: list[Point]) -> int:
    """Sets actually sent when unchanged values are skipped."""
    current: dict[str, str] = {}
    changes = 0
    for point in points:
        for role, label in point.settings.items():
            if current.get(role) != label:
                changes += 1
                current[role] = label
    return changes


def bytes_per_point(plan: Plan, costs: Costs) -> float:
    """Disk one point takes: one still, or one pass's frames."""
    if plan.mode == "stills":
        return costs.bytes_per_still
    frames = plan.trajectory.frames if plan.trajectory else 1
    return costs.bytes_per_clip_frame * frames


def summarize(plan: Plan, points: list[Point], costs: Costs | None = None) -> Summary:
    costs = costs or plan.costs
    changes = count_setting_changes(points)
    seconds = changes * costs.set_s
    moves = 0
    travel = 0.0
    if plan.mode == "stills":
        here = None
        for point in points:
            if point.slider_mm is not None and point.slider_mm != here:
                moves += 1
                travel += abs(point.slider_mm - (here if here is not None else 0.0))
                here = point.slider_mm
        seconds += len(points) * costs.capture_s + moves * costs.settle_s + travel / costs.move_mm_s
        if plan.positions:
            seconds += costs.home_s
        captures, clips = len(points), 0
    else:
        tr = plan.trajectory
        assert tr is not None
        starts = [point.slider_mm if point.slider_mm is not None else tr.start_mm for point in points]
        seconds += sum(costs.home_s + abs(s) / costs.move_mm_s + max(tr.seconds, tr.recording_s) + costs.capture_s
                       for s in starts)
        moves = 2 * len(points)
        travel = sum(abs(tr.end_mm - tr.start_mm) + abs(s) for s in starts)
        captures, clips = len(points) * tr.frames, len(points)
    size = len(points) * bytes_per_point(plan, costs)
    order = " > ".join(f"{a}{' (snake)' if a in plan.snake else ''}" for a in plan.loop) or "single point"
    return Summary(len(points), captures, clips, changes, moves, travel, seconds, size, order, costs)


def format_summary(plan: Plan, summary: Summary) -> str:
    swept = ", ".join(f"{r} x{len(v)}" for r, v in plan.axes.items()) or "nothing"
    lines = [
        f"plan      {plan.source}: scene {plan.session.get('scene')!r}, operator {plan.session.get('operator')!r}",
        f"rig       camera {plan.camera}, slider {plan.slider}",
        f"mode      {plan.mode}; axes {swept}"
        + (f"; slider {len(plan.positions)} positions" if plan.positions else "")
        + (f"; exposure held by {' then '.join(plan.exposure.compensate)}" if plan.exposure else ""),
        f"order     {summary.order} (outermost first)",
        f"points    {summary.points} ({summary.captures} frames"
        + (f" in {summary.clips} clips" if summary.clips else "") + f"), {summary.setting_changes} setting changes, "
        f"{summary.moves} moves over {summary.travel_mm:.0f} mm",
        f"estimate  {format_duration(summary.seconds)}, {format_bytes(summary.bytes)} on disk "
        f"(costs: {summary.costs.source})",
    ]
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
