"""Uploads are rebuilt from their pixels or frames, never copied: polyglots come out clean."""

from __future__ import annotations

import io
import math
import struct
import wave
from array import array

import av
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, PngImagePlugin

from jobs import uploads

PAYLOADS = (b"<script>", b"PK\x03\x04", b"alert(")
ZIP = b"PK\x03\x04" + b"\x14\x00" * 10 + b"evil.html<script>alert(1)</script>"


def clean(data: bytes) -> bool:
    return not any(payload in data for payload in PAYLOADS)


def jpeg_segments(data: bytes) -> list[int]:
    """Return the markers of a JPEG's segments up to the start of scan."""
    markers, i = [], 2
    while i < len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return markers


def image_bytes(fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 90)).save(buffer, fmt, **save)
    return buffer.getvalue()


def upload(data: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def test_a_jpeg_with_a_script_comment_and_app_segments_comes_out_clean() -> None:
    data = image_bytes("JPEG", comment=b"<script>alert(1)</script>")
    app15 = b"\xff\xef" + struct.pack(">H", len(ZIP) + 2) + ZIP
    data = data[:2] + app15 + data[2:] + ZIP  # an APPn segment, and a ZIP after the image
    assert 0xFE in jpeg_segments(data) and 0xEF in jpeg_segments(data)
    prepared = uploads.prepare_image(upload(data, "p.jpg"), ("jpeg", "png"))
    assert clean(prepared.content)
    assert 0xFE not in jpeg_segments(prepared.content)  # no COM
    assert not {m for m in jpeg_segments(prepared.content) if 0xE1 <= m <= 0xEF}  # no APP1-15
    with Image.open(io.BytesIO(prepared.content)) as image:
        assert image.size == (32, 24) and not image.info.get("comment")


def test_a_png_with_text_chunks_and_an_appended_zip_comes_out_clean() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    info.add_itxt("XML:com.adobe.xmp", "<x>alert(</x>", zip=False)
    data = image_bytes("PNG", pnginfo=info) + ZIP
    prepared = uploads.prepare_image(upload(data, "p.png"), ("png",))
    assert clean(prepared.content)
    assert b"tEXt" not in prepared.content and b"iTXt" not in prepared.content


def test_a_webp_with_exif_and_xmp_comes_out_clean() -> None:
    exif = Image.Exif()
    exif[0x010E] = "<script>alert(1)</script>"  # ImageDescription
    data = image_bytes("WEBP", exif=exif.tobytes(), xmp=b"<x>alert(</x>")
    prepared = uploads.prepare_image(upload(data, "p.webp"), ("webp",))
    assert clean(prepared.content)


def test_a_gif_comment_does_not_survive_into_its_png() -> None:
    data = image_bytes("GIF", comment=b"<script>alert(1)</script>")
    prepared = uploads.prepare_image(upload(data, "p.gif"), ("gif", "png"))
    assert prepared.mime_type == "image/png" and clean(prepared.content)


def wav_bytes(*, rate: int = 16_000, channels: int = 1, seconds: float = 0.25) -> bytes:
    frames = int(rate * seconds)
    samples = array("h", (int(8000 * math.sin(i / 7)) for i in range(frames * channels)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return buffer.getvalue()


def with_chunk(data: bytes, chunk_id: bytes, payload: bytes) -> bytes:
    """Insert a chunk right after the WAVE tag, and fix the RIFF size."""
    if len(payload) % 2:
        payload += b"\x00"
    chunk = chunk_id + struct.pack("<I", len(payload)) + payload
    body = data[12:]
    return b"RIFF" + struct.pack("<I", 4 + len(chunk) + len(body)) + b"WAVE" + chunk + body


def test_a_wav_with_a_zip_in_a_junk_chunk_is_rebuilt_from_its_frames() -> None:
    original = wav_bytes()
    data = with_chunk(original, b"junk", ZIP)
    data = with_chunk(data, b"LIST", b"INFOICMT" + struct.pack("<I", 8) + b"<script>")
    prepared = uploads.prepare_audio(upload(data, "v.wav"), ("wav",))
    assert clean(prepared.content)
    assert b"junk" not in prepared.content and b"LIST" not in prepared.content
    with wave.open(io.BytesIO(prepared.content)) as a, wave.open(io.BytesIO(original)) as b:
        assert a.readframes(a.getnframes()) == b.readframes(b.getnframes())
    assert prepared.duration_seconds == 0.25


def forged_header(data: bytes, *, channels: int | None = None, rate: int | None = None) -> bytes:
    """Rewrite the fmt chunk's channel count or rate (the header lies; the data stays)."""
    at = data.index(b"fmt ") + 8
    fmt_channels, fmt_rate = struct.unpack("<HI", data[at + 2 : at + 8])
    patched = struct.pack("<HI", channels or fmt_channels, rate or fmt_rate)
    return data[: at + 2] + patched + data[at + 8 :]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (forged_header(wav_bytes(), rate=1), "1 Hz"),
        (forged_header(wav_bytes(), channels=65_535), "65535 channels"),
        (wav_bytes(rate=4_000), "4000 Hz"),
        (wav_bytes(rate=8_000, seconds=0), "no audio"),
        (forged_header(wav_bytes(rate=192_000, seconds=0.01), rate=384_000), "384000 Hz"),
    ],
    ids=["1-hz", "65535-channels", "4-khz", "empty", "384-khz"],
)
def test_wav_bounds_on_rate_channels_and_length(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        uploads.prepare_audio(upload(data, "v.wav"), ("wav",))


@pytest.mark.parametrize(("rate", "channels"), [(8_000, 1), (44_100, 2), (192_000, 8)])
def test_wavs_within_bounds_are_accepted(rate: int, channels: int) -> None:
    prepared = uploads.prepare_audio(
        upload(wav_bytes(rate=rate, channels=channels, seconds=0.05), "v.wav"), ("wav",)
    )
    with wave.open(io.BytesIO(prepared.content)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (rate, channels)


def mp3_bytes() -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=44_100)
        stream.layout = "mono"
        for n in range(30):
            frame = av.AudioFrame(format="s16", layout="mono", samples=1152)
            tone = array("h", (int(9000 * math.sin((n * 1152 + i) / 9)) for i in range(1152)))
            frame.planes[0].update(tone.tobytes())
            frame.sample_rate, frame.pts = 44_100, n * 1152
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def test_an_mp3_with_tags_and_a_trailing_zip_is_re_encoded_clean() -> None:
    tag_body = b"TXXX" + struct.pack(">I", 30) + b"\x00\x00" + b"\x00<script>alert(1)</script>   "
    id3 = b"ID3\x03\x00\x00" + bytes([0, 0, 0, len(tag_body)]) + tag_body
    data = id3 + mp3_bytes() + ZIP
    prepared = uploads.prepare_audio(upload(data, "v.mp3"), ("mp3",))
    assert clean(prepared.content)
    assert not prepared.content.startswith(b"ID3")
    assert prepared.duration_seconds and prepared.duration_seconds > 0.5
