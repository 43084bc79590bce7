"""Sliders: the protocol, the GRBL driver (real boards over pyserial) and a GRBL emulator on a pty."""

from __future__ import annotations

from .protocol import Slider

__all__ = ["Slider", "open_slider", "EMULATOR_OPTIONS"]

EMULATOR_OPTIONS = {"travel_mm", "max_rate_mm_min", "accel_mm_s2", "speed", "positive_space", "soft_limits",
                    "hard_limits", "homing", "backlash_mm", "noise_mm", "start_mm", "boot_s", "seed", "settings"}


def open_slider(spec: str, **options) -> Slider | None:
    """'emulator' (in-process GRBL emulator on a pty; `.emulator` is its fault-injection handle and
    close() stops it), 'none' (no slider), or a serial port path such as /dev/serial/by-id/usb-...

    Options are split between the emulator (speed, backlash_mm, ...) and the driver (approach, overshoot_mm,
    settle_s, ...)."""
    if spec is None or spec.strip().lower() in ("none", "no", ""):
        return None
    from .grbl import GrblSlider

    if spec == "emulator":
        from .emulator import GrblEmulator

        emu_opts = {k: v for k, v in options.items() if k in EMULATOR_OPTIONS}
        driver_opts = {k: v for k, v in options.items() if k not in EMULATOR_OPTIONS}
        emulator = GrblEmulator(**emu_opts)
        path = emulator.start()
        try:
            return GrblSlider(path, emulator=emulator, **driver_opts)
        except BaseException:
            emulator.stop()
            raise
    return GrblSlider(spec, **options)
