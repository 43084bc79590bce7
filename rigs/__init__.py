"""Devices and the physics of a camera: optics, scenes, cameras and sliders. Imports nothing else of ours."""
