"""Inspect a stored output file and make its preview: a thumbnail for images, a poster frame
for videos. Audio gets its duration; 3D meshes are checked to be GLB."""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

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
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
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
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        try:
            with wave.open(str(path)) as wav:
                duration = wav.getnframes() / float(wav.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError) as exc:
            raise InvalidMedia(f"The result is not a valid WAV file: {exc}") from exc
        return MediaInfo("audio/wav", "wav", duration_seconds=round(duration, 3))
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
