"""GRBL 1.1 `error:N` and `ALARM:N` codes with what they mean at a camera slider and what to do.

Wording follows the meaning of gnea/grbl's doc/csv tables, rephrased for a technician at the rig.
"""

from __future__ import annotations

ERRORS: dict[int, str] = {
    1: "expected command letter: a G-code word has no letter",
    2: "bad number format: a word's value is missing or not a number",
    3: "invalid statement: the '$' system command is not recognised",
    4: "negative value where a positive one is required",
    5: "homing is not enabled in the settings ($22=0)",
    6: "minimum step pulse must be more than 3 microseconds",
    7: "EEPROM read failed; the affected settings were restored to defaults",
    8: "'$' command only allowed when the controller is Idle",
    9: "G-code locked out during an alarm or jog; home ($H) or unlock ($X) first",
    10: "soft limits cannot be enabled without homing",
    11: "line too long (over 80 characters); it was not executed",
    12: "a '$' setting would make the step rate exceed 30 kHz",
    13: "safety door detected open",
    14: "build info or startup line too long for EEPROM; not stored",
    15: "jog target exceeds the machine travel; the jog was ignored",
    16: "invalid jog command: no '=' or a prohibited G-code",
    17: "laser mode needs PWM output",
    20: "unsupported or invalid G-code command in the line",
    21: "more than one G-code command from the same modal group in the line",
    22: "feed rate not set: add F<mm/min> to the G1 line",
    23: "a G-code command needs an integer value",
    24: "more than one G-code command that uses axis words in the line",
    25: "a G-code word is repeated in the line",
    26: "no axis words in the line for a command that needs them",
    27: "invalid line number",
    28: "a G-code command is missing a required value word",
    29: "G59.x work coordinate systems are not supported",
    30: "G53 is only allowed with G0 and G1",
    31: "axis words found where no command uses them",
    32: "G2/G3 arcs need at least one in-plane axis word",
    33: "invalid motion target",
    34: "invalid arc radius",
    35: "G2/G3 arcs need at least one in-plane offset word",
    36: "unused value words in the line",
    37: "G43.1 offset is not on the configured tool-length axis",
    38: "tool number above the supported maximum",
}

ALARMS: dict[int, str] = {
    1: "hard limit switch triggered; position is likely lost after the sudden stop: re-home",
    2: "soft limit: the motion target exceeds the travel; position kept, unlock with $X or re-home",
    3: "reset while moving; position is likely lost: re-home",
    4: "probe fail: probe not in the expected initial state",
    5: "probe fail: probe did not contact within the programmed travel",
    6: "homing fail: the homing cycle was reset",
    7: "homing fail: safety door opened during homing",
    8: "homing fail: pull-off did not clear the limit switch; increase $27 or check wiring",
    9: "homing fail: limit switch not found within the search distance; check $130 and the switch wiring",
    10: "homing fail: second switch of a dual axis not found",
}

CRITICAL_ALARMS = frozenset({1, 2, 10})   # GRBL waits for a soft reset (0x18) before it listens again
POSITION_LOST_ALARMS = frozenset({1, 3, 6, 7, 8, 9, 10})


def error_message(code: int) -> str:
    return f"error:{code} ({ERRORS.get(code, 'unknown GRBL error code')})"


def alarm_message(code: int) -> str:
    return f"ALARM:{code} ({ALARMS.get(code, 'unknown GRBL alarm code')})"
