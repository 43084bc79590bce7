"""Trapezoidal velocity profile of one straight move: accelerate, cruise, decelerate to rest.

Used by the emulator (where the carriage is at time t) and by the driver (how long a move should take).
A segment may start already moving (v0 > 0): that is how a feed hold decelerates mid-move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Trapezoid:
    distance: float        # mm, >= 0, along the move
    v0: float              # mm/s at t = 0
    v_peak: float          # mm/s reached (<= v_max)
    accel: float           # mm/s^2
    t_accel: float
    t_cruise: float
    t_decel: float

    @classmethod
    def plan(cls, distance: float, v_max: float, accel: float, v0: float = 0.0) -> "Trapezoid":
        distance = max(0.0, distance)
        v0 = max(0.0, v0)
        # Peak speed if we accelerate from v0 then brake to 0 within `distance`.
        v_peak = min(max(v_max, v0), math.sqrt(max(0.0, accel * distance + v0 * v0 / 2.0)))
        v_peak = max(v_peak, v0)
        t_accel = (v_peak - v0) / accel
        d_accel = (v_peak * v_peak - v0 * v0) / (2.0 * accel)
        t_decel = v_peak / accel
        d_decel = v_peak * v_peak / (2.0 * accel)
        d_cruise = max(0.0, distance - d_accel - d_decel)
        t_cruise = d_cruise / v_peak if v_peak > 0 else 0.0
        return cls(distance, v0, v_peak, accel, t_accel, t_cruise, t_decel)

    @property
    def duration(self) -> float:
        return self.t_accel + self.t_cruise + self.t_decel

    def at(self, t: float) -> tuple[float, float]:
        """(distance covered, speed) at time t since the segment started."""
        a, v0, vp = self.accel, self.v0, self.v_peak
        if t <= 0:
            return 0.0, v0
        if t < self.t_accel:
            return v0 * t + 0.5 * a * t * t, v0 + a * t
        d = v0 * self.t_accel + 0.5 * a * self.t_accel ** 2
        t -= self.t_accel
        if t < self.t_cruise:
            return d + vp * t, vp
        d += vp * self.t_cruise
        t -= self.t_cruise
        if t < self.t_decel:
            return min(self.distance, d + vp * t - 0.5 * a * t * t), vp - a * t
        return self.distance, 0.0


def move_duration(distance: float, v_max: float, accel: float) -> float:
    """Seconds a rest-to-rest move of `distance` mm takes at `v_max` mm/s and `accel` mm/s^2."""
    return Trapezoid.plan(abs(distance), v_max, accel).duration
