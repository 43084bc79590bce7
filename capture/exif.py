"""Read a file's photographic metadata into one normalised record.

exifread reads what it can (JPEG, TIFF-based RAWs such as DNG/NEF/ARW/CR2, HEIC). What it cannot read
(CR3, RAF, MOV/MP4 and other containers: it returns `{}`) goes to one long-lived `exiftool -stay_open`
process (pyexiftool) when exiftool is installed; when it is not, the file is recorded as *unparsed* with
the reason ("metadata not parsed: exiftool needed for CR3"), never as "no metadata".

A file exifread does read may still lack an exposure field (f-number, exposure time, ISO) or give one
outside sane ranges (an ISO in a Canon maker note, a JPEG whose settings sit in an APP12 segment, an ISO
field saturated at 65535): exiftool is asked for just those fields. exiftool prints ISO through its
vendor tables, so a Kyocera code 13 reads as ISO 100. Where each exposure field came from is recorded as
"reader:tag" (`exifread:EXIF FNumber`, `exiftool:MakerNotes:ISO`). benchmarks/exif_accuracy.py measures
the agreement with exiftool on the real camera files.

Bad input never raises: empty, truncated, corrupt and non-image files come back with status "error" and
a reason in words.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import shutil
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator

import exifread

from rigs.camera.protocol import ROLE_FIELDS, SHUTTER, WHITE_BALANCE

# exifread logs "File format not recognized" and decode warnings; we report outcomes ourselves.
logging.getLogger("exifread").setLevel(logging.CRITICAL)

PARSED, UNPARSED, ERROR = "parsed", "unparsed", "error"

# Formats exifread reads (it may still find nothing in a given file).
EXIFREAD_FORMATS = {"jpeg", "tiff", "heic", "png", "webp"}
VIDEO_FORMATS = {"mov", "mp4", "avi", "m2ts"}


@dataclass
class Metadata:
    """What was learnt about one file. `fields` uses the exif table's column names."""

    status: str                          # parsed | unparsed | error
    format: str | None = None            # sniffed container: jpeg, tiff, cr3, mov, ...
    source: str | None = None            # exifread | exiftool | exifread+exiftool (exiftool filled gaps)
    error: str | None = None             # why unparsed / error
    fields: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None

    @property
    def format_label(self) -> str:
        return (self.format or "this format").upper()


# ------------------------------------------------------------------------------------------------ sniffing

def sniff(head: bytes) -> str | None:
    """The container a file really is, from its first bytes (extensions lie: a .jpg may be HEIC)."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return "cr3"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"avif", b"hevc"):
            return "heic"
        if brand == b"qt  ":
            return "mov"
        return "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mov"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"IIU\x00", b"IIRO", b"IIRS"):
        return "tiff"
    if head[:15] == b"FUJIFILMCCD-RAW":
        return "raf"
    if head[6:14] == b"HEAPCCDR":
        return "crw"
    if head[:4] == b"\x00MRM":
        return "mrw"
    if head[:4] == b"FOVb":
        return "x3f"
    if head[1:10] == b"70.1 .reV" or head[:7] == b"ARECOYK":
        return "kyocera-raw"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(head) > 4 and head[4] == 0x47 and (len(head) < 197 or head[196] == 0x47):
        return "m2ts"
    if head[:1] == b"\x47" and (len(head) < 189 or head[188] == 0x47):
        return "m2ts"
    return None


def jpeg_structure(data: bytes, tail: bytes | None = None) -> tuple[str | None, int | None, int | None]:
    """Walk a JPEG's marker segments up to the scan: (problem or None, width, height). Cheap (headers only)
    and catches truncated and corrupt files that an EXIF reader happily half-reads. For a big file `data`
    is its head and `tail` its last bytes."""
    if tail is not None:
        problem, width, height = jpeg_structure(data)
        if problem and problem.startswith(("truncated JPEG: the file ends after",
                                           f"truncated JPEG: {len(data)} bytes and no end-of-image")):
            problem = None          # only the head was given: the headers or the scan go on beyond it
        if problem is None and tail.rfind(b"\xff\xd9") < 0:
            problem = "truncated JPEG: no end-of-image marker (the file was cut short; copy it again from the card)"
        return problem, width, height
    n, i = len(data), 2
    width = height = None
    while i < n:
        if data[i] != 0xFF:
            return f"corrupt JPEG: expected a marker at byte {i}, found 0x{data[i]:02x}", width, height
        marker = data[i + 1] if i + 1 < n else None
        if marker is None:
            break
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        if marker == 0xD9:
            return "corrupt JPEG: end-of-image marker before any image data", width, height
        if i + 4 > n:
            break
        length = struct.unpack_from(">H", data, i + 2)[0]
        if length < 2:
            return f"corrupt JPEG: segment 0x{marker:02x} at byte {i} has length {length}", width, height
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and i + 9 <= n:
            height, width = struct.unpack_from(">HH", data, i + 5)
        if marker == 0xDA:
            if width is None:
                return "corrupt JPEG: image data without a frame header (no SOF marker)", width, height
            if data.rfind(b"\xff\xd9", max(i, n - 65536)) < 0:
                return (f"truncated JPEG: {n} bytes and no end-of-image marker (the file was cut short; "
                        "copy it again from the card)"), width, height
            return None, width, height
        i += 2 + length
    return (f"truncated JPEG: the file ends after {n} bytes, inside its headers (copy it again from the card)",
            width, height)


def _headers_within(head: bytes) -> bool:
    """Whether a big JPEG's head holds every segment up to the scan (EXIF, maker notes, XMP): then the
    readers need nothing else of the file. Other formats (TIFF-based RAW, HEIC) may point anywhere in it."""
    problem = jpeg_structure(head)[0]
    return problem is None or problem.startswith(f"truncated JPEG: {len(head)} bytes and no end-of-image")


# ------------------------------------------------------------------------------------------------ exiftool

class ExifTool:
    """One long-lived `exiftool -stay_open` process for the whole run (Perl start-up costs ~100 ms a call).

    Values come back as numbers (`TAG#`: no print conversion), except ISO, which is asked for printed:
    exiftool's vendor tables turn maker-note codes into the ISO they stand for (Kyocera 13 -> 100, Nikon
    "0 200" -> 200). Tags are keyed `Group:Tag` (family 0: EXIF, MakerNotes, XMP, QuickTime, APP12 ...)."""

    _instance: "ExifTool | None" = None

    def __init__(self) -> None:
        import exiftool  # pyexiftool

        self._helper = exiftool.ExifToolHelper(common_args=["-G"], check_execute=False)
        self._helper.run()

    @classmethod
    def available(cls) -> bool:
        return shutil.which("exiftool") is not None

    @classmethod
    def shared(cls) -> "ExifTool":
        if cls._instance is None:
            cls._instance = ExifTool()
            atexit.register(cls.close_shared)
        return cls._instance

    @classmethod
    def close_shared(cls) -> None:
        if cls._instance is not None:
            try:
                cls._instance._helper.terminate()
            except Exception:  # already gone: nothing to stop
                pass
            cls._instance = None

    def read(self, path: str | os.PathLike[str], tags: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every tag of the file, or only `tags` (exiftool tag names)."""
        wanted = [f"-{t}" if t == "ISO" else f"-{t}#" for t in tags] if tags else ["-ISO", "-all#"]
        # an absolute path: a file named "-x.jpg" must not read as an option
        result = self._helper.execute_json(*wanted, os.path.abspath(path))
        return result[0] if result else {}


# ------------------------------------------------------------------------------------------------ reading

def read_metadata(data: bytes, path: str | os.PathLike[str], *, maker_notes: bool = True, use_exiftool: bool | None = None,
                  tail: bytes | None = None) -> Metadata:
    """Metadata of one file whose bytes are `data` (already read for hashing; `path` is used for exiftool and
    messages). For a file too big to hold in memory, `data` is its head and `tail` its last bytes; exifread
    then reads the file itself. `use_exiftool=None` means: when it is installed. Never raises: whatever a
    malformed file does to the readers ends as an error status with the reason."""
    try:
        return _read_metadata(data, path, maker_notes=maker_notes, use_exiftool=use_exiftool, tail=tail)
    except Exception as exc:  # the last safety net: one odd file must not stop a run of thousands
        return Metadata(ERROR, format=sniff(data[:256]) if data else None,
                        error=f"metadata unreadable: {type(exc).__name__}: {exc}"[:500])


def _read_metadata(data: bytes, path: str | os.PathLike[str], *, maker_notes: bool, use_exiftool: bool | None,
                   tail: bytes | None) -> Metadata:
    if not data:
        return Metadata(ERROR, error="empty file (0 bytes): nothing to read; re-copy it from the camera")
    fmt = sniff(data[:256])
    meta = Metadata(UNPARSED, format=fmt)
    if fmt == "jpeg":
        problem, meta.width, meta.height = jpeg_structure(data, tail)
        if problem:
            meta.status, meta.error = ERROR, problem
            return meta
    if fmt in EXIFREAD_FORMATS:
        try:
            if tail is None or (fmt == "jpeg" and _headers_within(data)):    # parsed from the bytes read
                tags = exifread.process_file(io.BytesIO(data), details=maker_notes, extract_thumbnail=False)
            else:
                with open(path, "rb") as fh:
                    tags = exifread.process_file(fh, details=maker_notes, extract_thumbnail=False)
        except OSError as exc:
            meta.status, meta.error = ERROR, f"cannot read file: {exc.strerror or exc}"
            return meta
        except Exception as exc:  # exifread raises assorted errors on malformed files
            meta.status = ERROR
            meta.error = f"EXIF unreadable: exifread {type(exc).__name__}: {exc}"[:500]
            return meta
        if tags:
            _from_exifread(meta, tags)
            lacking = [name for name in EXPOSURE_FIELDS if meta.fields.get(name) is None]
            if lacking and (ExifTool.available() if use_exiftool is None else use_exiftool):
                _fill_from_exiftool(meta, path, lacking)
            return meta
    if use_exiftool is None:
        use_exiftool = ExifTool.available()
    if use_exiftool:
        return _from_exiftool(meta, path)
    if fmt is None:
        meta.status = ERROR
        meta.error = (f"not an image or video file cinectrl recognises (starts with {data[:8].hex()}); "
                      "install exiftool (apt-get install libimage-exiftool-perl) to try harder")
    elif fmt in EXIFREAD_FORMATS:
        meta.error = (f"metadata not parsed: exifread found no EXIF in this {meta.format_label}; "
                      "exiftool needed to read its other metadata")
    else:
        meta.error = f"metadata not parsed: exiftool needed for {meta.format_label}"
    return meta


def _exiftool_read(path: str | os.PathLike[str], tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """The shared exiftool's answer; a dead or unstartable exiftool is closed (the next call starts a new one)
    and raises."""
    try:
        return ExifTool.shared().read(path, tags)
    except Exception:
        ExifTool.close_shared()
        raise


def _fill_from_exiftool(meta: Metadata, path: str | os.PathLike[str], lacking: list[str]) -> None:
    """Ask exiftool for the exposure fields exifread left empty (or gave insane values for). A failure
    leaves them empty: the exifread fields stand."""
    wanted = tuple(dict.fromkeys(t for name in lacking for t in _EXIFTOOL_TAGS[name]))
    try:
        tags = _exiftool_read(path, wanted)
    except Exception:  # exiftool died on this file: keep what exifread read
        return
    found = _exposure_from_exiftool(tags)
    filled = False
    for name in lacking:
        if found.get(name) is not None:
            meta.fields[name], meta.fields[EXPOSURE_FIELDS[name]] = found[name], found[EXPOSURE_FIELDS[name]]
            filled = True
    if "exposure_s" in lacking and meta.fields.get("exposure_s") is not None:
        meta.fields["exposure_text"] = _fraction_text(meta.fields["exposure_s"])
    if filled:
        meta.source = meta.fields["source"] = "exifread+exiftool"
        meta.tags.update({k: v for k, v in tags.items() if k != "SourceFile"})


def _from_exiftool(meta: Metadata, path: str | os.PathLike[str]) -> Metadata:
    try:
        tags = _exiftool_read(path)
    except Exception as exc:  # exiftool died or could not be started
        meta.status = ERROR
        meta.error = f"exiftool failed on this file: {type(exc).__name__}: {exc}"[:500]
        return meta
    error = tags.get("ExifTool:Error")
    if error:
        meta.status = ERROR
        what = "not an image or video file" if meta.format is None else f"unreadable {meta.format_label}"
        meta.error = f"{what}: exiftool says {error!r}"
        return meta
    mime = str(tags.get("File:MIMEType", ""))
    if meta.format is None and not mime.startswith(("image/", "video/", "audio/")):
        meta.status = ERROR
        meta.error = (f"not an image or video file: exiftool reads it as {tags.get('File:FileType', 'unknown')}"
                      f" ({mime or 'no MIME type'})")
        return meta
    meta.format = meta.format or str(tags.get("File:FileType", "")).lower() or None
    _normalise_exiftool(meta, tags)
    useful = [k for k in tags if not k.startswith(("File:", "ExifTool:", "SourceFile", "Composite:"))]
    if useful or meta.width:
        meta.status, meta.source, meta.error = PARSED, "exiftool", None
    else:
        meta.status = UNPARSED
        meta.error = f"metadata not parsed: no metadata tags found in this {meta.format_label} (exifread, exiftool)"
    return meta


# ------------------------------------------------------------------------------------------------ normalising

def _num(value: Any) -> float | None:
    """Ratio / int / float / '11/2' -> float; 0 and junk -> None (manual lenses record 0)."""
    try:
        if isinstance(value, (int, float, Fraction)):   # exifread's Ratio is a Fraction
            out = float(value)
        elif value is None:
            return None
        else:
            out = float(Fraction(str(value)))
    except (ValueError, ZeroDivisionError, TypeError, OverflowError):
        return None
    return out if out and out == out else None


_PADDING = " \t\r\n\x00"


def _text(value: Any) -> str | None:
    """A value as text without padding (spaces, NULs); blank -> None."""
    if value is None:
        return None
    return str(value).strip(_PADDING) or None


def _name(value: Any) -> str | None:
    """A make / model / lens / serial as text; vendor code numbers and placeholders ('6', 'n/a') -> None."""
    text = _text(value)
    if text is None or text.lower() in ("n/a", "none", "unknown", "----") or text.replace(" ", "").isdigit():
        return None
    return text


def _serial(value: Any) -> str | None:
    text = _text(value)
    return None if text is None or set(text) <= {"0", " "} else text


def _int(value: Any) -> int | None:
    number = _num(value)
    return int(round(number)) if number is not None else None


def _datetime(stamp: str | None, subsec: str | None, offset: str | None) -> str | None:
    """'2008:05:30 15:56:01' + '21' + '+02:00' -> '2008-05-30T15:56:01.21+02:00'."""
    if not stamp or len(stamp) < 19 or stamp.startswith("0000"):
        return None
    text = stamp[:10].replace(":", "-") + "T" + stamp[11:19]
    if subsec and subsec.strip().isdigit():
        text += "." + subsec.strip()
    if offset and len(offset.strip()) == 6 and offset.strip()[0] in "+-":
        text += offset.strip()
    return text


def _kelvin(value: Any) -> int | None:
    number = _num(value)
    return int(round(number)) if number and 1000 <= number <= 50000 else None


_SKIP = ("JPEGThumbnail", "TIFFThumbnail", "Thumbnail JPEGInterchangeFormat", "MakerNote Tag 0x")
def _tag_text(tags: dict[str, Any], *keys: str) -> str | None:
    """The first of these exifread tags present, as its printable text without padding (None if blank)."""
    for key in keys:
        tag = tags.get(key)
        if tag is not None:
            return tag.printable.strip(_PADDING) or None
    return None


def _tag_number(tags: dict[str, Any], *keys: str) -> float | None:
    """The first of these exifread tags present, as a number (its first value; 0 and junk -> None)."""
    for key in keys:
        tag = tags.get(key)
        if tag is not None:
            values = tag.values
            if isinstance(values, list):
                return _num(values[0]) if values else None
            return _num(values)
    return None


def _from_exifread(meta: Metadata, tags: dict[str, Any]) -> None:
    """exifread tags -> the normalised fields. Runs once per file of a bulk ingest, so it reads each tag
    once through two small helpers (a third of the cost of going through the generic ones)."""
    f: dict[str, Any] = {"source": "exifread"}
    f["make"] = _name(_tag_text(tags, "Image Make"))
    f["model"] = _name(_tag_text(tags, "Image Model"))
    f["lens"] = _name(_tag_text(tags, "EXIF LensModel", "MakerNote LensModel", "MakerNote LensType"))
    f["serial"] = _serial(_tag_text(tags, "EXIF BodySerialNumber", "MakerNote SerialNumber",
                                    "MakerNote InternalSerialNumber"))
    f_number = _tag_number(tags, "EXIF FNumber")
    if f_number is not None and sane("f_number", f_number):
        f["f_number"], f["f_number_source"] = f_number, "exifread:EXIF FNumber"
    else:
        f["f_number"] = f["f_number_source"] = None
    exposure = _tag_number(tags, "EXIF ExposureTime")
    if exposure is not None and sane("exposure_s", exposure):
        f["exposure_s"], f["exposure_source"] = exposure, "exifread:EXIF ExposureTime"
        f["exposure_text"] = _tag_text(tags, "EXIF ExposureTime")
    else:
        f["exposure_s"] = f["exposure_text"] = f["exposure_source"] = None
    f["iso"] = f["iso_source"] = None
    for key in _EXIFREAD_ISO:   # ISOSpeedRatings saturates at 65535: then the EXIF 2.3 sensitivity tags
        iso = _tag_number(tags, key)
        if iso is not None and sane("iso", iso):
            f["iso"], f["iso_source"] = int(round(iso)), "exifread:" + key
            break
    f["focal_mm"] = _tag_number(tags, "EXIF FocalLength")
    f["focal_35mm"] = _tag_number(tags, "EXIF FocalLengthIn35mmFilm")
    f["white_balance"] = _tag_text(tags, "MakerNote WhiteBalance", "EXIF WhiteBalance")
    f["kelvin"] = _kelvin(_tag_number(tags, "MakerNote ColorTemperature", "MakerNote ColorTemperatureAuto",
                                      "MakerNote WBColorTemp"))
    orientation = _tag_number(tags, "Image Orientation")
    f["orientation"] = int(round(orientation)) if orientation is not None else None
    width = _tag_number(tags, "EXIF ExifImageWidth", "Image ImageWidth")
    height = _tag_number(tags, "EXIF ExifImageLength", "Image ImageLength")
    f["width"] = int(round(width)) if width is not None else None
    f["height"] = int(round(height)) if height is not None else None
    f["datetime_original"] = _datetime(_tag_text(tags, "EXIF DateTimeOriginal"),
                                       _tag_text(tags, "EXIF SubSecTimeOriginal"),
                                       _tag_text(tags, "EXIF OffsetTimeOriginal"))
    meta.fields = f
    meta.tags = {k: v.printable for k, v in tags.items() if not k.startswith(_SKIP)}
    meta.width = meta.width or f["width"]
    meta.height = meta.height or f["height"]
    meta.status, meta.source = PARSED, "exifread"


# exiftool groups (family 0) in the order a value is believed; any other group (APP12, SigmaRaw ...) after these.
_GROUPS = ("EXIF", "MakerNotes", "XMP", "QuickTime", "RIFF", "M2TS", "H264", "File", "Composite")


def _candidates(tags: dict[str, Any], *names: str) -> Iterator[tuple[str, Any]]:
    """(key, value) of each non-empty tag with one of these names: names in order, then groups in _GROUPS
    order, then the other groups."""
    for name in names:
        for group in _GROUPS:
            key = f"{group}:{name}"
            value = tags.get(key)
            if value not in (None, ""):
                yield key, value
        suffix = ":" + name
        for key, value in tags.items():
            if key.endswith(suffix) and key.split(":", 1)[0] not in _GROUPS and value not in (None, ""):
                yield key, value


def _pick(tags: dict[str, Any], *names: str) -> Any:
    return next(_candidates(tags, *names), (None, None))[1]


# Exposure fields, their source column, and the exiftool tags that can give them (ISO: exiftool's printed ISO,
# then the EXIF 2.3 sensitivity tags for an ISO field saturated at 65535).
EXPOSURE_FIELDS = {"f_number": "f_number_source", "exposure_s": "exposure_source", "iso": "iso_source"}
_EXIFTOOL_TAGS = {"f_number": ("FNumber",), "exposure_s": ("ExposureTime",),
                  "iso": ("ISO", "RecommendedExposureIndex", "ISOSpeed", "StandardOutputSensitivity")}
_EXIFREAD_ISO = ("EXIF ISOSpeedRatings", "EXIF RecommendedExposureIndex", "EXIF ISOSpeed",
                 "EXIF StandardOutputSensitivity")
# What a camera can record; outside it a value is a vendor code, a placeholder or junk, and another reader is
# asked. ISO 65535 is the 16-bit field's "65535 or more" (EXIF 2.3), not a sensitivity.
SANE = {"f_number": (0.5, 512.0), "exposure_s": (1e-6, 86400.0), "iso": (1.0, 10_000_000.0)}


def sane(name: str, value: float) -> bool:
    low, high = SANE[name]
    return low <= value <= high and not (name == "iso" and round(value) == 65535)


def _exposure_from_exiftool(tags: dict[str, Any]) -> dict[str, Any]:
    """f-number, exposure time and ISO with their "exiftool:Group:Tag" sources: the first sane candidate each."""
    out: dict[str, Any] = {}
    for name, source in EXPOSURE_FIELDS.items():
        out[name] = out[source] = None
        for key, value in _candidates(tags, *_EXIFTOOL_TAGS[name]):
            number = _num(value)
            if number is not None and sane(name, number):
                out[name], out[source] = (int(round(number)) if name == "iso" else number), "exiftool:" + key
                break
    out["exposure_text"] = _fraction_text(out["exposure_s"])
    return out


def _fraction_text(seconds: float | None) -> str | None:
    """An exposure time as a photographer writes it: 0.00929 -> '1/108' (within 1 %, a thirtieth of a stop:
    APEX and maker-note values are rarely exact reciprocals), 0.8 -> '0.8'."""
    if not seconds:
        return None
    if seconds < 1:
        inverse = 1 / seconds
        if abs(inverse - round(inverse)) < 1e-2 * inverse:
            return f"1/{round(inverse)}"
    return f"{seconds:g}"


_WB_CODES = {0: "Auto", 1: "Manual"}


def _normalise_exiftool(meta: Metadata, tags: dict[str, Any]) -> None:
    f: dict[str, Any] = {}
    f["make"] = _name(_pick(tags, "Make"))
    f["model"] = _name(_pick(tags, "Model", "CanonImageType"))
    f["lens"] = _name(_pick(tags, "LensModel", "Lens", "LensID"))
    f["serial"] = _serial(_pick(tags, "SerialNumber", "BodySerialNumber", "InternalSerialNumber"))
    f.update(_exposure_from_exiftool(tags))
    f["focal_mm"] = _num(_pick(tags, "FocalLength"))
    f["focal_35mm"] = _num(_pick(tags, "FocalLengthIn35mmFormat"))
    wb = tags.get("EXIF:WhiteBalance")
    f["white_balance"] = _WB_CODES.get(wb, None if wb is None else str(wb))
    f["kelvin"] = _kelvin(_pick(tags, "ColorTemperature", "ColorTempAsShot"))
    f["orientation"] = _int(_pick(tags, "Orientation"))
    f["width"] = _int(_pick(tags, "ExifImageWidth", "ImageWidth"))
    f["height"] = _int(_pick(tags, "ExifImageHeight", "ImageHeight"))
    stamp = _pick(tags, "DateTimeOriginal", "CreateDate")
    f["datetime_original"] = _datetime(str(stamp) if stamp else None, str(_pick(tags, "SubSecTimeOriginal") or ""),
                                       str(_pick(tags, "OffsetTimeOriginal") or ""))
    f["duration_s"] = _num(_pick(tags, "Duration"))
    f["source"] = "exiftool"
    meta.fields = f
    meta.tags = {k: v for k, v in tags.items() if k != "SourceFile"}
    meta.width = meta.width or f["width"]
    meta.height = meta.height or f["height"]
    fps = _num(_pick(tags, "VideoFrameRate", "FrameRate"))
    if meta.format in VIDEO_FORMATS:
        meta.fps = fps
        frames = _int(_pick(tags, "FrameCount", "TotalFrameCount"))
        if frames is None and fps and f["duration_s"]:
            frames = int(round(fps * f["duration_s"]))
        meta.frames = frames


def exif_settings(fields: dict[str, Any]) -> dict[str, tuple[str | None, float | None]]:
    """The EXIF side of the per-role settings, role -> (text, number)."""
    out: dict[str, tuple[str | None, float | None]] = {}
    for role, field_ in ROLE_FIELDS.items():        # rigs/camera/protocol.py: the one role <-> field table
        value = fields.get(field_.column) if field_.exif else None
        if value is not None:
            out[role] = (f"{value:g}", float(value))
    if fields.get("exposure_s") is not None:         # the shutter as the file writes it: 1/400, not 0.0025
        out[SHUTTER] = (fields.get("exposure_text") or f"{fields['exposure_s']:g}", fields["exposure_s"])
    if fields.get("white_balance") is not None:
        out[WHITE_BALANCE] = (str(fields["white_balance"]), None)
    return out
