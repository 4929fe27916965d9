"""Inspect a stored output file and make its preview: a thumbnail for images, a poster frame
for videos. Audio gets its duration; 3D meshes are checked to be GLB."""

from __future__ import annotations

import io
import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


def inspect(kind: Output, path: Path, content_type: str = "", *, preview: bool = True) -> MediaInfo:
    """Return what the file is; raise InvalidMedia when it is not a valid `kind` file.

    With `preview=False` no pixel or sample is decoded (only headers and structure are
    checked), so inspecting a file of any size costs little time and memory; the preview is
    then made by `make_preview` on the media queue. A WebP that is its own preview (no larger
    than a thumbnail, see `OWN_PREVIEW_MAX_BYTES`) comes back with its bytes as the preview.
    """
    inspectors = {
        Output.IMAGE: _image,
        Output.VIDEO: _video,
        Output.AUDIO: _audio,
        Output.MODEL: _model,
    }
    return inspectors[kind](path, content_type, preview)


def has_preview(kind: Output) -> bool:
    """Return whether outputs of this kind get a preview."""
    return kind in (Output.IMAGE, Output.VIDEO, Output.AUDIO)


def make_preview(kind: Output, source: BinaryIO | Path) -> bytes | None:
    """Return the WebP preview of a stored file (None where the kind has none), decoding it
    in bounded memory where the format allows (see `image_preview`, `waveform_wav`)."""
    if kind is Output.IMAGE:
        return image_preview(source)
    if kind is Output.AUDIO:
        return waveform_wav(source)
    if kind is Output.VIDEO:
        return _poster(source)
    return None


def image_preview(source: BinaryIO | Path) -> bytes:
    """Return a thumbnail of an image file without holding the full-size image where the
    format allows: JPEG is decoded at 1/2 to 1/8 scale (`draft`), others are reduced by an
    integer factor right after decoding, before the resampling filter runs."""
    try:
        with Image.open(source) as image:
            if _is_own_preview(image, _size_of(source)):
                return _read_all(source)
            if image.format == "JPEG":
                image.draft("RGB", THUMBNAIL_SIZE)
            image.load()
            factor = min(image.width // THUMBNAIL_SIZE[0], image.height // THUMBNAIL_SIZE[1])
            if factor >= 2:
                image = image.reduce(factor)
            return thumbnail(image)
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise InvalidMedia(f"The image cannot be decoded: {exc}") from exc


# A WebP no larger than a thumbnail, and no heavier than this, is its own preview: decoding and
# encoding it again would cost the media worker ~10 ms per output for the same picture.
OWN_PREVIEW_MAX_BYTES = 256 * 1024


def _is_own_preview(image: Image.Image, size: int | None) -> bool:
    return (
        image.format == "WEBP"
        and not getattr(image, "is_animated", False)
        and image.mode in ("RGB", "RGBA")
        and image.width <= THUMBNAIL_SIZE[0]
        and image.height <= THUMBNAIL_SIZE[1]
        and size is not None
        and size <= OWN_PREVIEW_MAX_BYTES
    )


def _size_of(source: BinaryIO | Path) -> int | None:
    """The byte size of a file on disk, a Django File (local or object storage) or a buffer."""
    if isinstance(source, Path):
        return source.stat().st_size
    size = getattr(source, "size", None)
    if isinstance(size, int):
        return size
    try:
        return os.fstat(source.fileno()).st_size
    except (OSError, AttributeError, io.UnsupportedOperation):
        pass
    if isinstance(source, io.BytesIO):
        return source.getbuffer().nbytes
    return None


def _read_all(source: BinaryIO | Path) -> bytes:
    if isinstance(source, Path):
        return source.read_bytes()
    source.seek(0)
    return source.read()


def thumbnail(image: Image.Image) -> bytes:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    else:
        image = image.copy()
    image.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    # WebP's fastest method: about half the CPU of the default for a thumbnail of the same
    # size and look; the media worker makes one per output.
    image.save(buffer, "WEBP", quality=82, method=0)
    return buffer.getvalue()


# Frames read at once while drawing a waveform: memory stays flat whatever the file's length.
WAVEFORM_CHUNK_FRAMES = 64 * 1024
# Pillow decodes little-endian PCM samples (WAV's byte order) into an image row whose
# getextrema() finds the lowest and highest sample in C.
PCM_RAWMODES = {1: ("L", "L"), 2: ("I", "I;16S"), 4: ("I", "I;32S")}


def waveform_wav(
    source: bytes | BinaryIO | Path, size: tuple[int, int] = (640, 160)
) -> bytes | None:
    """Return a WebP picture of a WAV file's waveform (peak per column, over all channels),
    or None if the sample format is not one we draw (8, 16 or 32-bit PCM).

    The samples are streamed a chunk at a time and each chunk's extremes are found in C, so a
    200 MB file costs a few MB of memory and a fraction of a second per 100 MB.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with wave.open(source if not isinstance(source, Path) else str(source)) as wav:
            width_bytes, channels = wav.getsampwidth(), wav.getnchannels()
            frames = wav.getnframes()
            if width_bytes not in PCM_RAWMODES or frames == 0 or channels == 0:
                return None
            mode, rawmode = PCM_RAWMODES[width_bytes]
            columns, height = size
            per_column = max(1, frames // columns)
            drawn = min(columns, max(1, frames // per_column))
            peaks = [0] * drawn
            column, in_column = 0, 0
            while column < drawn:
                raw = wav.readframes(min(WAVEFORM_CHUNK_FRAMES, per_column - in_column))
                count = len(raw) // width_bytes
                if count == 0:
                    break
                low, high = Image.frombytes(
                    mode, (count, 1), raw[: count * width_bytes], "raw", rawmode
                ).getextrema()
                if width_bytes == 1:  # 8-bit WAV is unsigned, centred on 128
                    low, high = low - 128, high - 128
                peaks[column] = max(peaks[column], abs(low), abs(high))
                in_column += count // channels
                if in_column >= per_column:
                    column, in_column = column + 1, 0
    except (wave.Error, EOFError):
        return None
    full_scale = float(2 ** (8 * width_bytes - 1))
    image = Image.new("RGB", size, (23, 23, 28))
    draw = ImageDraw.Draw(image)
    middle = height / 2
    for x, peak in enumerate(peaks):
        half = max(1.0, min(1.0, peak / full_scale) * (height / 2 - 6))
        draw.line([(x, middle - half), (x, middle + half)], fill=(116, 143, 252))
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def _image(path: Path, content_type: str, preview: bool) -> MediaInfo:
    try:
        # Opened once: what the header says is read before `verify`, after which the image
        # could not be used any more (decoding a WebP's container alone costs ~1 ms).
        with Image.open(path) as image:
            fmt = image.format or ""
            if fmt not in IMAGE_TYPES:
                raise InvalidMedia(f"Unsupported image format {fmt or 'unknown'}.")
            mime, ext = IMAGE_TYPES[fmt]
            width, height = image.size
            if width * height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{width}×{height} pixels is too many.")
            # A file that is its own preview costs nothing to preview: no media task for it.
            own_preview = _is_own_preview(image, path.stat().st_size)
            image.verify()  # structure and checksums, without decoding the pixels
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise InvalidMedia(f"The result is not a valid image: {exc}") from exc
    if own_preview:
        return MediaInfo(mime, ext, width, height, preview=path.read_bytes())
    return MediaInfo(mime, ext, width, height, preview=image_preview(path) if preview else None)


def _video(path: Path, content_type: str, preview: bool) -> MediaInfo:
    import av  # imported here: only video outputs need it

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            fmt = container.format.name
            poster = next(container.decode(stream)).to_image() if preview or not width else None
    except (av.error.FFmpegError, IndexError, StopIteration) as exc:
        raise InvalidMedia(f"The result is not a playable video: {exc}") from exc
    if poster is not None:
        width, height = poster.width, poster.height
    mime, ext = ("video/webm", "webm") if "webm" in fmt else ("video/mp4", "mp4")
    return MediaInfo(
        mime, ext, width, height, duration, thumbnail(poster) if preview and poster else None
    )


def _poster(source: BinaryIO | Path) -> bytes:
    import av

    try:
        with av.open(str(source) if isinstance(source, Path) else source) as container:
            frame = next(container.decode(container.streams.video[0]))
            return thumbnail(frame.to_image())
    except (av.error.FFmpegError, IndexError, StopIteration) as exc:
        raise InvalidMedia(f"The video cannot be decoded: {exc}") from exc


def _audio(path: Path, content_type: str, preview: bool) -> MediaInfo:
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
            preview=waveform_wav(path) if preview else None,
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


def _model(path: Path, content_type: str, preview: bool) -> MediaInfo:
    with path.open("rb") as handle:
        header = handle.read(12)
    if len(header) < 12 or header[:4] != b"glTF":
        raise InvalidMedia("The result is not a binary glTF (GLB) file.")
    _, version, length = struct.unpack("<4sII", header)
    if version != 2 or length != path.stat().st_size:
        raise InvalidMedia("The GLB header does not match the file.")
    return MediaInfo("model/gltf-binary", "glb")
