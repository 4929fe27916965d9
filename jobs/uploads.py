"""Validation of uploaded input files, before anything is stored.

Uploads are rebuilt, never copied: what is stored is made from the decoded content alone.
Images are opened with Pillow under a format allow-list and a pixel cap (decompression bombs are
refused before decoding), decoded to pixels, and a new image is encoded from those pixels: no
segment of the upload survives (EXIF, GPS, XMP, ICC, JPEG COM/APPn, PNG text chunks), so a file
that is also something else (a polyglot) does not either. WAV audio is read as PCM frames under
bounds on rate, channels, sample width and duration, and a new WAV is written from the frames
(junk, LIST and any other chunks are gone). MP3 is remuxed frame by frame without its tags.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import av
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

from . import media

IMAGE_MAX_BYTES = 20 * 1024 * 1024
IMAGE_MAX_PIXELS = 40_000_000
AUDIO_MAX_BYTES = 25 * 1024 * 1024
AUDIO_MAX_SECONDS = 600
WAV_RATES = (8_000, 192_000)  # samples per second, inclusive
WAV_MAX_CHANNELS = 8
WAV_SAMPLE_WIDTHS = (1, 2, 3, 4)  # bytes: 8, 16, 24 and 32-bit PCM

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
            image = from_pixels(image, encode_as)
            out = io.BytesIO()
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


def from_pixels(image: Image.Image, encode_as: str) -> Image.Image:
    """Return a new image made of `image`'s pixels only: nothing of the upload's `info`
    (comments, EXIF, XMP, ICC profile, text chunks) or palette tricks comes along."""
    if encode_as == "JPEG":
        mode = "L" if image.mode in ("L", "1") else "RGB"
    else:
        mode = image.mode if image.mode in ("RGB", "RGBA", "L", "LA") else "RGBA"
        if mode == "RGBA" and image.mode == "P" and "transparency" not in image.info:
            mode = "RGB"
    pixels = image.convert(mode) if image.mode != mode else image
    return Image.frombytes(mode, pixels.size, pixels.tobytes())


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
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.getnframes()
            _check_wav_bounds(name, channels=channels, width=width, rate=rate, frames=frames)
            pcm = wav.readframes(frames)
    except (wave.Error, EOFError, struct.error) as exc:
        raise ValidationError(f"{name} is not a valid PCM WAV file ({exc}).") from exc
    if len(pcm) != frames * channels * width:
        raise ValidationError(f"{name}: the WAV header does not match its audio data.")
    # A new file from the frames alone: no chunk of the upload but its samples survives.
    out = io.BytesIO()
    with wave.open(out, "wb") as rebuilt:
        rebuilt.setnchannels(channels)
        rebuilt.setsampwidth(width)
        rebuilt.setframerate(rate)
        rebuilt.writeframes(pcm)
    content = out.getvalue()
    return PreparedUpload(
        kind="audio",
        content=content,
        mime_type="audio/wav",
        extension="wav",
        original_name=name[:255],
        duration_seconds=round(frames / rate, 3),
        preview=media.waveform_wav(content),
    )


def _check_wav_bounds(name: str, *, channels: int, width: int, rate: int, frames: int) -> None:
    low, high = WAV_RATES
    if not low <= rate <= high:
        raise ValidationError(
            f"{name} is sampled at {rate} Hz; use {low // 1000}–{high // 1000} kHz."
        )
    if not 1 <= channels <= WAV_MAX_CHANNELS:
        raise ValidationError(
            f"{name} has {channels} channels; at most {WAV_MAX_CHANNELS} are accepted."
        )
    if width not in WAV_SAMPLE_WIDTHS:
        raise ValidationError(f"{name} has {width * 8}-bit samples; use 8, 16, 24 or 32-bit PCM.")
    if frames == 0:
        raise ValidationError(f"{name} has no audio.")
    if frames / rate > AUDIO_MAX_SECONDS:
        raise ValidationError(f"{name} lasts {frames / rate:.0f} s; at most {AUDIO_MAX_SECONDS} s.")


def _mp3(name: str, data: bytes) -> PreparedUpload:
    with tempfile.NamedTemporaryFile(suffix=".mp3") as handle:
        handle.write(data)
        handle.flush()
        try:
            info = media.inspect(media.Output.AUDIO, Path(handle.name))
        except media.InvalidMedia as exc:
            raise ValidationError(f"{name} is not a valid MP3 file.") from exc
    if info.duration_seconds and info.duration_seconds > AUDIO_MAX_SECONDS:
        raise ValidationError(
            f"{name} lasts {info.duration_seconds:.0f} s; at most {AUDIO_MAX_SECONDS} s."
        )
    try:
        content = rebuild_mp3(data)
    except (av.error.FFmpegError, ValueError) as exc:
        raise ValidationError(f"{name} could not be decoded: {exc}") from exc
    return PreparedUpload(
        kind="audio",
        content=content,
        mime_type="audio/mpeg",
        extension="mp3",
        original_name=name[:255],
        duration_seconds=info.duration_seconds,
    )


def rebuild_mp3(data: bytes) -> bytes:
    """Return a new MP3 encoded from the decoded samples of `data`: no ID3 tag, no pictures,
    no bytes between or after the frames. (Copying packets is not enough: a demuxer hands
    trailing bytes over with the last frame.)"""
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(data), "r", format="mp3") as source,
        av.open(out, "w", format="mp3", options={"id3v2_version": "0"}) as target,
    ):
        heard = source.streams.audio[0]
        rate = heard.rate or 44_100
        if not WAV_RATES[0] <= rate <= 48_000:  # what MP3 itself allows
            raise ValueError(f"an MP3 sampled at {rate} Hz")
        layout = "mono" if heard.channels == 1 else "stereo"
        stream = target.add_stream("mp3", rate=rate)
        stream.layout = layout
        stream.bit_rate = 192_000
        resampler = av.AudioResampler(format="s16p", layout=layout, rate=rate)
        decoded = 0
        for packet in source.demux(heard):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # bytes that are not a frame (junk after the last one): not carried
            for frame in frames:
                decoded += 1
                for ready in resampler.resample(frame):
                    target.mux(stream.encode(ready))
        if not decoded:
            raise ValueError("no audio frames")
        for ready in resampler.resample(None):
            target.mux(stream.encode(ready))
        target.mux(stream.encode(None))
    return out.getvalue()
