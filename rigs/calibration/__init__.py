"""Measuring a camera body and lens: the physics of calibration, pure numpy/OpenCV on frames in memory.

One module per measurement, each taking frames (uint8 RGB arrays, H x W x 3) with the settings they were
shot at and returning a small section of a `CalibrationProfile` plus the figures that say how well it fit:

=================  =============================================================  ==============================
module             measures                                                       from
=================  =============================================================  ==============================
`response`         the response curve (code -> relative linear light), Debevec or  an exposure bracket of a
                   Robertson via OpenCV                                            static scene
`white_balance`    per-channel gains for each white-balance setting                a grey card per setting
`geometry`         real focal length and field of view, distortion, breathing      a checkerboard per focal
                   (focal length across focus), with `cv2.calibrateCamera`         length and focus distance
`defocus`          the lens's real defocus scale (blur radius x f-number)          an aperture sweep on an edge
`noise`            photon-transfer curve per ISO: gain and read noise              pairs of flat frames
=================  =============================================================  ==============================

`profile.py` holds the result: a versioned, JSON-serialisable `CalibrationProfile` per body + lens, with the
functions everything else uses in its place of the ideal camera (linearise/encode with the measured
response, white-balance gains, real focal length, defocus scale, noise). Reading files and the catalog is
`capture/calibration.py`'s job; nothing here does I/O.
"""

from __future__ import annotations

from .inputs import CalibrationInputError
from .profile import CalibrationProfile

__all__ = ["CalibrationInputError", "CalibrationProfile"]
