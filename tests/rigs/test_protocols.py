"""Every backend satisfies its protocol member by member, with the same parameters (names, kinds,
defaults), not only by name as `isinstance` on a runtime-checkable Protocol checks: the simulated camera
(what every test and dry run trusts) and the tethered one, the GRBL driver (real boards and the emulator)."""

from __future__ import annotations

import inspect

import pytest

from rigs.camera.gphoto.client import GPhotoCamera
from rigs.camera.protocol import Camera
from rigs.camera.sim import SimCamera
from rigs.slider.grbl import GrblSlider
from rigs.slider.protocol import Slider


def _members(protocol) -> list[str]:
    return [name for name in dir(protocol) if not name.startswith("_") and name in protocol.__dict__]


def _params(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("protocol, backend", [(Camera, SimCamera), (Camera, GPhotoCamera), (Slider, GrblSlider)])
def test_backend_matches_its_protocol(protocol, backend):
    for name in _members(protocol):
        expected = protocol.__dict__[name]
        if isinstance(expected, property):
            # a property of the protocol: a property of the backend, or an attribute the backend sets
            got = inspect.getattr_static(backend, name, None)
            assert isinstance(got, property) or f"self.{name} = " in inspect.getsource(backend), \
                f"{backend.__name__} has no {name}"
            continue
        assert hasattr(backend, name), f"{backend.__name__} lacks {name}"
        got = inspect.getattr_static(backend, name)
        wanted = _params(expected)
        actual = _params(got)
        for name_kind_default in wanted:
            assert name_kind_default in actual, f"{backend.__name__}.{name}{inspect.signature(got)} lacks " \
                                                f"{name_kind_default[0]} as in {protocol.__name__}.{name}" \
                                                f"{inspect.signature(expected)}"
        extra = [p for p in actual if p not in wanted]
        assert all(d is not inspect.Parameter.empty or k in (inspect.Parameter.VAR_KEYWORD,) for _, k, d in extra), \
            f"{backend.__name__}.{name} requires parameters the protocol does not give: {extra}"
