"""Slider driver speed over a real pty: round-trip latency vs a bare pyserial loop, and how soon a move's end is seen.

1. Round trip: the driver's `command("G91")` (ok per line) and `status()` (`?` -> `<...>`) against a bare
   pyserial `write` + `readline` loop doing the same exchange, each on its own emulator in this process,
   measured in alternating blocks so machine noise hits both alike. Target: driver median within 2x of bare.
2. Completion: `move_to` on the emulator; delay = when the driver returned from its Idle sync minus the
   instant the emulator's motion model reached Idle. Target: within 20 ms (median and p99 reported).

Run: .venv/bin/python benchmarks/slider.py [--n 2000] [--moves 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import serial

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rigs.slider.emulator import GrblEmulator  # noqa: E402
from rigs.slider.grbl import GrblSlider  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1e3:.3f} ms  p99 {pct(values, 0.99) * 1e3:.3f} ms"


def bare_port(emu: GrblEmulator) -> serial.Serial:
    port = serial.Serial(emu.path, 115200, timeout=2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if b"to unlock" in port.readline():
            break
    port.write(b"$X\n")
    assert port.readline().startswith(b"[MSG"), "no unlock message"
    assert port.readline().strip() == b"ok"
    return port


def round_trips(n: int, block: int = 100) -> dict[str, list[float]]:
    emu_bare, emu_drv = GrblEmulator(speed=50), GrblEmulator(speed=50)
    emu_bare.start()
    emu_drv.start()
    bare = bare_port(emu_bare)
    drv = GrblSlider(emu_drv.path, emulator=emu_drv)
    drv.unlock()
    times: dict[str, list[float]] = {"bare line": [], "driver line": [], "bare ?": [], "driver ?": []}
    clock = time.perf_counter
    try:
        for _ in range(max(1, n // block)):
            for _ in range(block):
                t = clock()
                bare.write(b"G91\n")
                if bare.readline().strip() != b"ok":
                    raise RuntimeError("bare loop lost sync")
                times["bare line"].append(clock() - t)
            for _ in range(block):
                t = clock()
                drv.command("G91")
                times["driver line"].append(clock() - t)
            for _ in range(block):
                t = clock()
                bare.write(b"?")
                if not bare.readline().startswith(b"<"):
                    raise RuntimeError("bare loop lost sync")
                times["bare ?"].append(clock() - t)
            for _ in range(block):
                t = clock()
                drv.status()
                times["driver ?"].append(clock() - t)
    finally:
        bare.close()
        emu_bare.stop()
        drv.close()
    return times


def completion_delays(moves: int, speed: float) -> list[float]:
    emu = GrblEmulator(speed=speed)
    emu.start()
    drv = GrblSlider(emu.path, emulator=emu)
    offset = time.time() - time.monotonic()
    delays = []
    try:
        drv.home()
        for i in range(moves):
            target = 50.0 + (i % 2) * 20.0 + i * 0.5
            result = drv.move_to(target)
            delays.append((result.finished_at - offset) - emu.idle_at)
    finally:
        drv.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="round trips per kind")
    parser.add_argument("--moves", type=int, default=40, help="moves for the completion delay")
    parser.add_argument("--speed", type=float, default=10.0, help="emulator time compression for the moves")
    args = parser.parse_args()

    times = round_trips(args.n)
    print(f"round trip over a pty, {len(times['bare line'])} each (alternating blocks of 100):")
    for key in times:
        print(f"  {key:12s} {fmt(times[key])}")
    for kind in ("line", "?"):
        ratio = statistics.median(times[f"driver {kind}"]) / statistics.median(times[f"bare {kind}"])
        ratio99 = pct(times[f"driver {kind}"], 0.99) / pct(times[f"bare {kind}"], 0.99)
        verdict = "OK" if ratio <= 2.0 else "MISSED"
        print(f"  driver/bare ({kind}): median x{ratio:.2f}, p99 x{ratio99:.2f}  (target <= 2x: {verdict})")

    delays = completion_delays(args.moves, args.speed)
    med, p99, worst = statistics.median(delays), pct(delays, 0.99), max(delays)
    verdict = "OK" if p99 <= 0.020 else "MISSED"
    print(f"move-complete detection after the emulator reached Idle ({len(delays)} moves, speed x{args.speed:g}):")
    print(f"  median {med * 1e3:.3f} ms  p99 {p99 * 1e3:.3f} ms  max {worst * 1e3:.3f} ms  "
          f"(target <= 20 ms: {verdict})")
    print("  reference: polling '?' at the 5 Hz GRBL recommends would see Idle on average 100 ms late")
    from benchmarks._results import write_result

    figures = {"round_trips_per_kind": args.n, "moves": args.moves, "emulator_speed": args.speed}
    for key, values in times.items():
        figures[f"{key.replace(' ', '_').replace('?', 'status')}_median_ms"] = round(statistics.median(values) * 1e3, 4)
    for kind in ("line", "?"):
        name = "status" if kind == "?" else kind
        figures[f"ratio_driver_to_bare_{name}"] = round(statistics.median(times[f"driver {kind}"]) /
                                                        statistics.median(times[f"bare {kind}"]), 3)
    figures.update(completion_median_ms=round(med * 1e3, 3), completion_p99_ms=round(p99 * 1e3, 3),
                   completion_max_ms=round(worst * 1e3, 3))
    write_result("slider", figures)


if __name__ == "__main__":
    main()
