"""Turning a plan into files and catalog rows: plans, the session runner, the catalog, EXIF, clips."""
