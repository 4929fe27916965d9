"""Validation of uploaded input files, before anything is stored.

Images are opened with Pillow under a format allow-list and a pixel cap (decompression bombs are
refused before decoding), then re-encoded: EXIF and GPS metadata are dropped and a file that is
also something else (a polyglot) does not survive. Audio headers are checked against the file.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

from . import media

IMAGE_MAX_BYTES = 20 * 1024 * 1024
IMAGE_MAX_PIXELS = 40_000_000
AUDIO_MAX_BYTES = 25 * 1024 * 1024
AUDIO_MAX_SECONDS = 600

# Pillow format name → (our format word, MIME type, extension, how we re-encode it)
IMAGE_FORMATS = {
    "PNG": ("png", "image/png", "png", "PNG"),
    "JPEG": ("jpeg", "image/jpeg", "jpg", "JPEG"),
    "WEBP": ("webp", "image/webp", "webp", "WEBP"),
    "GIF": ("gif", "image/png", "png", "PNG"),  # the first frame, as PNG
}


@dataclass(frozen=True)
class PreparedUpload:
    """A validated, sanitised upload, ready to be stored as an Asset."""

    kind: str  # "image" or "audio"
    content: bytes
    mime_type: str
    extension: str
    original_name: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    preview: bytes | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


def prepare(kind: str, upload: UploadedFile, formats: tuple[str, ...]) -> PreparedUpload:
    """Return the sanitised upload; raise ValidationError with a message for the form."""
    if kind == "image":
        return prepare_image(upload, formats)
    return prepare_audio(upload, formats)


def _read_capped(upload: UploadedFile, cap: int, what: str) -> tuple[str, bytes]:
    """Return the upload's name and bytes, refusing it when it is larger than `cap` (the
    declared size is checked first; the read itself is capped too, in case it lied)."""
    name = upload.name or "upload"
    if upload.size is not None and upload.size > cap:
        raise ValidationError(
            f"{name} is {_megabytes(upload.size)}; {what} may be at most {_megabytes(cap)}."
        )
    data = upload.read(cap + 1)
    if len(data) > cap:
        raise ValidationError(f"{name}: {what} may be at most {_megabytes(cap)}.")
    return name, data


def prepare_image(upload: UploadedFile, formats: tuple[str, ...]) -> PreparedUpload:
    name, data = _read_capped(upload, IMAGE_MAX_BYTES, "images")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or ""
            width, height = probe.size
    except Image.DecompressionBombError as exc:
        # Pillow refuses to even open images past twice its own pixel limit.
        raise ValidationError(
            f"{name} has far more than {IMAGE_MAX_PIXELS // 1_000_000} megapixels; refused."
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValidationError(f"{name} is not an image Studio can read.") from exc
    if fmt not in IMAGE_FORMATS or IMAGE_FORMATS[fmt][0] not in formats:
        allowed = ", ".join(f.upper() for f in formats)
        raise ValidationError(f"{name} is {fmt or 'not an image'}; use {allowed}.")
    if width * height > IMAGE_MAX_PIXELS:
        raise ValidationError(
            f"{name} is {width}×{height} pixels; at most {IMAGE_MAX_PIXELS // 1_000_000} "
            "megapixels are accepted."
        )
    _, mime, ext, encode_as = IMAGE_FORMATS[fmt]
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)  # keep the intended orientation
            if encode_as == "JPEG" and image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            elif image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                image = image.convert("RGBA")
            out = io.BytesIO()
            # No exif=, no icc_profile=: metadata is not carried over.
            image.save(out, encode_as, quality=92, optimize=encode_as != "WEBP")
            preview = media.thumbnail(image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(f"{name} could not be decoded: {exc}") from exc
    return PreparedUpload(
        kind="image",
        content=out.getvalue(),
        mime_type=mime,
        extension=ext,
        original_name=name[:255],
        width=image.width,
        height=image.height,
        preview=preview,
    )


def prepare_audio(upload: UploadedFile, formats: tuple[str, ...]) -> PreparedUpload:
    name, data = _read_capped(upload, AUDIO_MAX_BYTES, "audio")
    allowed = " or ".join(f.upper() for f in formats)
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        if "wav" not in formats:
            raise ValidationError(f"{name} is WAV; use {allowed}.")
        return _wav(name, data)
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        if "mp3" not in formats:
            raise ValidationError(f"{name} is MP3; this field takes {allowed} only.")
        return _mp3(name, data)
    raise ValidationError(f"{name} is not {allowed} audio.")


def _wav(name: str, data: bytes) -> PreparedUpload:
    (riff_size,) = struct.unpack("<I", data[4:8])
    # The RIFF size counts everything after its own field; a file padded to an even length
    # may carry one byte more.
    if riff_size + 8 not in (len(data), len(data) - 1):
        raise ValidationError(
            f"{name}: the WAV header says {riff_size + 8} bytes but the file has {len(data)}."
        )
    try:
        with wave.open(io.BytesIO(data)) as wav:
            frames, rate = wav.getnframes(), wav.getframerate()
            expected = frames * wav.getnchannels() * wav.getsampwidth()
    except (wave.Error, EOFError, struct.error) as exc:
        raise ValidationError(f"{name} is not a valid WAV file ({exc}).") from exc
    if rate <= 0 or expected > len(data):
        raise ValidationError(f"{name}: the WAV header does not match its audio data.")
    duration = frames / rate
    if duration > AUDIO_MAX_SECONDS:
        raise ValidationError(f"{name} lasts {duration:.0f} s; at most {AUDIO_MAX_SECONDS} s.")
    return PreparedUpload(
        kind="audio",
        content=data,
        mime_type="audio/wav",
        extension="wav",
        original_name=name[:255],
        duration_seconds=round(duration, 3),
        preview=media.waveform_wav(data),
    )


def _mp3(name: str, data: bytes) -> PreparedUpload:
    with tempfile.NamedTemporaryFile(suffix=".mp3") as handle:
        handle.write(data)
        handle.flush()
        try:
            info = media.inspect(media.Output.AUDIO, Path(handle.name))
        except media.InvalidMedia as exc:
            raise ValidationError(f"{name} is not a valid MP3 file.") from exc
    return PreparedUpload(
        kind="audio",
        content=data,
        mime_type="audio/mpeg",
        extension="mp3",
        original_name=name[:255],
        duration_seconds=info.duration_seconds,
    )
