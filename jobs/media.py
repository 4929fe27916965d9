"""Inspect a stored output file and make its preview: a thumbnail for images, a poster frame
for videos. Audio gets its duration; 3D meshes are checked to be GLB."""

from __future__ import annotations

import array
import io
import struct
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, UnidentifiedImageError

from .catalog import Output

THUMBNAIL_SIZE = (640, 640)
Image.MAX_IMAGE_PIXELS = 64_000_000  # a decompression bomb is refused, not decoded

IMAGE_TYPES = {
    "WEBP": ("image/webp", "webp"),
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
}


class InvalidMedia(Exception):
    """The file is not a valid file of the expected kind."""


@dataclass(frozen=True)
class MediaInfo:
    mime_type: str
    extension: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    preview: bytes | None = None  # WebP


def inspect(kind: Output, path: Path, content_type: str = "") -> MediaInfo:
    """Return what the file is; raise InvalidMedia when it is not a valid `kind` file."""
    inspectors = {
        Output.IMAGE: _image,
        Output.VIDEO: _video,
        Output.AUDIO: _audio,
        Output.MODEL: _model,
    }
    return inspectors[kind](path, content_type)


def thumbnail(image: Image.Image) -> bytes:
    image = image.copy()
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    image.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=82)
    return buffer.getvalue()


def waveform_wav(data: bytes, size: tuple[int, int] = (640, 160)) -> bytes | None:
    """Return a WebP picture of a WAV file's waveform (peak per column), or None if the
    sample format is not one we draw (8, 16 or 32-bit PCM)."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            width_bytes, channels = wav.getsampwidth(), wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None
    typecode = {1: "b", 2: "h", 4: "i"}.get(width_bytes)
    if typecode is None or not raw:
        return None
    samples = array.array(typecode)
    samples.frombytes(raw[: len(raw) - len(raw) % width_bytes])
    if width_bytes > 1 and sys.byteorder == "big":
        samples.byteswap()
    if width_bytes == 1:  # 8-bit WAV is unsigned
        samples = array.array("b", bytes((b - 128) & 0xFF for b in raw))
    samples = samples[::channels] if channels > 1 else samples
    full_scale = float(2 ** (8 * width_bytes - 1))
    columns, height = size
    step = max(1, len(samples) // columns)
    image = Image.new("RGB", size, (23, 23, 28))
    draw = ImageDraw.Draw(image)
    middle = height / 2
    for x in range(min(columns, len(samples) // step or 1)):
        chunk = samples[x * step : (x + 1) * step]
        peak = max((abs(v) for v in chunk), default=0) / full_scale
        half = max(1.0, peak * (height / 2 - 6))
        draw.line([(x, middle - half), (x, middle + half)], fill=(116, 143, 252))
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def _image(path: Path, content_type: str) -> MediaInfo:
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            fmt = image.format or ""
            if fmt not in IMAGE_TYPES:
                raise InvalidMedia(f"Unsupported image format {fmt or 'unknown'}.")
            mime, ext = IMAGE_TYPES[fmt]
            return MediaInfo(mime, ext, image.width, image.height, preview=thumbnail(image))
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise InvalidMedia(f"The result is not a valid image: {exc}") from exc


def _video(path: Path, content_type: str) -> MediaInfo:
    import av  # imported here: only video outputs need it

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
            poster = frame.to_image()
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            fmt = container.format.name
    except (av.error.FFmpegError, IndexError, StopIteration) as exc:
        raise InvalidMedia(f"The result is not a playable video: {exc}") from exc
    mime, ext = ("video/webm", "webm") if "webm" in fmt else ("video/mp4", "mp4")
    return MediaInfo(mime, ext, poster.width, poster.height, duration, thumbnail(poster))


def _audio(path: Path, content_type: str) -> MediaInfo:
    with path.open("rb") as handle:
        head = handle.read(12)
    if len(head) < 4:
        raise InvalidMedia("The result is empty or too short to be audio.")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        try:
            with wave.open(str(path)) as wav:
                duration = wav.getnframes() / float(wav.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError) as exc:
            raise InvalidMedia(f"The result is not a valid WAV file: {exc}") from exc
        return MediaInfo(
            "audio/wav",
            "wav",
            duration_seconds=round(duration, 3),
            preview=waveform_wav(path.read_bytes()),
        )
    if head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        import av

        try:
            with av.open(str(path)) as container:
                duration = (container.duration or 0) / 1_000_000 or None
        except av.error.FFmpegError as exc:
            raise InvalidMedia(f"The result is not a valid MP3 file: {exc}") from exc
        return MediaInfo("audio/mpeg", "mp3", duration_seconds=duration)
    raise InvalidMedia("The result is neither WAV nor MP3 audio.")


def _model(path: Path, content_type: str) -> MediaInfo:
    with path.open("rb") as handle:
        header = handle.read(12)
    if len(header) < 12 or header[:4] != b"glTF":
        raise InvalidMedia("The result is not a binary glTF (GLB) file.")
    _, version, length = struct.unpack("<4sII", header)
    if version != 2 or length != path.stat().st_size:
        raise InvalidMedia("The GLB header does not match the file.")
    return MediaInfo("model/gltf-binary", "glb")
