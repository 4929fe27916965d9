"""Real output files made locally, one per media kind, labelled as sandbox output.

Every file is deterministic for a job (seeded), reflects what was asked (prompt text, size,
format, duration, palette), and is valid for its type: an image in the requested format, an
H.264 MP4, a 16-bit WAV, a binary glTF (GLB) mesh.
"""

from __future__ import annotations

import io
import json
import math
import random
import struct
import textwrap
import wave
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

Colour = tuple[int, int, int]

FORMATS = {
    "webp": ("WEBP", "image/webp"),
    "jpeg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
}


def _hex(colour: str) -> Colour:
    colour = colour.lstrip("#")
    return (int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16))


def palette_for(seed: int, palette: Sequence[str] | None) -> tuple[Colour, Colour]:
    if palette:
        colours = [_hex(c) for c in palette]
        return colours[0], colours[-1] if len(colours) > 1 else tuple(255 - v for v in colours[0])  # type: ignore[return-value]
    rng = random.Random(seed)  # noqa: S311 - pictures, not secrets
    hue = rng.random()
    return _hsv(hue, 0.55, 0.95), _hsv((hue + 0.35) % 1.0, 0.75, 0.35)


def _hsv(h: float, s: float, v: float) -> Colour:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return (int(r * 255), int(g * 255), int(b * 255))


def gradient(width: int, height: int, top: Colour, bottom: Colour) -> Image.Image:
    """A vertical gradient from `top` to `bottom`: one column computed, then widened (a
    full-size mask and composite cost ten times more, per job, in the provider stand-in)."""
    column = Image.linear_gradient("L").resize((1, height))
    strip = Image.merge(
        "RGB",
        [
            column.point(lambda v, a=a, b=b: a + (b - a) * v // 255)
            for a, b in zip(top, bottom, strict=True)
        ],
    )
    return strip.resize((width, height), Image.Resampling.NEAREST)


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


@lru_cache(maxsize=1024)
def _lettering(text: str, size: int) -> tuple[Image.Image, tuple[int, int]]:
    """`text` rendered once as a coverage mask (and its offset from the pen position): a
    prompt's lines repeat across a batch's jobs, and FreeType rasterising them again for
    every job cost the stand-in provider more CPU than the rest of its picture."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255)
    return mask, (left, top)


def _write(image: Image.Image, xy: tuple[int, int], text: str, size: int, fill: Colour) -> None:
    mask, (left, top) = _lettering(text, size)
    image.paste(fill, (xy[0] + left, xy[1] + top), mask)


def still(
    *,
    width: int,
    height: int,
    seed: int,
    title: str,
    text: str,
    palette: Sequence[str] | None = None,
) -> Image.Image:
    """Return a picture that visibly reflects the request: the prompt over a seeded gradient."""
    top, bottom = palette_for(seed, palette)
    image = gradient(width, height, top, bottom)
    draw = ImageDraw.Draw(image)
    unit = max(8, min(width, height) // 20)
    margin = unit
    draw.rectangle((0, 0, width, unit * 2), fill=(20, 20, 28))
    _write(image, (margin, unit // 2), "SANDBOX OUTPUT", unit, (255, 214, 0))
    _write(image, (margin, unit * 3), title, int(unit * 1.2), (255, 255, 255))
    chars = max(10, int(width / (unit * 0.55)))
    lines = textwrap.wrap(text, width=chars)[: max(1, (height - unit * 7) // int(unit * 1.3))]
    y = unit * 5
    for line in lines:
        _write(image, (margin + 2, y + 2), line, unit, (0, 0, 0))
        _write(image, (margin, y), line, unit, (255, 255, 255))
        y += int(unit * 1.3)
    _write(
        image,
        (margin, height - unit * 2),
        f"seed {seed} · {width}x{height}",
        int(unit * 0.8),
        (235, 235, 235),
    )
    return image


def image_bytes(image: Image.Image, output_format: str) -> tuple[bytes, str]:
    fmt, mime = FORMATS.get(output_format, FORMATS["webp"])
    buffer = io.BytesIO()
    # WebP's fastest method: the stand-in provider must not be the bottleneck it measures.
    options = {"method": 0} if fmt == "WEBP" else {}
    image.save(buffer, fmt, quality=85, **options)
    return buffer.getvalue(), mime


def video_bytes(
    *, width: int, height: int, seconds: float, seed: int, title: str, text: str
) -> bytes:
    """Return an H.264 MP4: the still drifting under a moving light, `seconds` long."""
    import av

    fps = 12
    frames = max(1, round(seconds * fps))
    base = still(width=width, height=height, seed=seed, title=title, text=text)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        radius = max(6, min(width, height) // 8)
        for index in range(frames):
            frame_image = base.copy()
            draw = ImageDraw.Draw(frame_image)
            phase = index / max(1, frames - 1)
            cx = int(radius + phase * (width - 2 * radius))
            cy = int(height / 2 + math.sin(phase * math.tau) * height / 4)
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(255, 214, 0))
            frame = av.VideoFrame.from_image(frame_image)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def wav_bytes(*, text: str, seed: int, exaggeration: float = 0.5, rate: int = 22050) -> bytes:
    """Return a 16-bit mono WAV whose melody follows the text (a tone per character)."""
    step = 0.06
    seconds = min(20.0, max(1.0, len(text) * step))
    rng = random.Random(seed)  # noqa: S311
    base = 180 + rng.random() * 120
    samples = bytearray()
    total = int(seconds * rate)
    chars = text or " "
    for i in range(total):
        t = i / rate
        ch = chars[min(len(chars) - 1, int(t / step))]
        freq = base * (1 + (ord(ch) % 24) / 24 * (0.5 + exaggeration))
        envelope = 0.0 if ch.isspace() else min(1.0, (t % step) / 0.01) * 0.6
        value = int(envelope * 12000 * math.sin(math.tau * freq * t))
        samples += struct.pack("<h", value)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(samples))
    return buffer.getvalue()


def glb_bytes(*, seed: int, painted: bool) -> bytes:
    """Return a binary glTF 2.0 file holding one coloured mesh (a faceted gem)."""
    rng = random.Random(seed)  # noqa: S311
    sides = 6 + rng.randrange(6)
    top, bottom = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)
    ring = [
        (math.cos(a) * 0.8, 0.15, math.sin(a) * 0.8)
        for a in (math.tau * k / sides for k in range(sides))
    ]
    positions: list[tuple[float, float, float]] = []
    normals: list[tuple[float, float, float]] = []
    colours: list[tuple[float, float, float, float]] = []
    for k in range(sides):
        a, b = ring[k], ring[(k + 1) % sides]
        for face in ((top, a, b), (bottom, a, b)):
            n = _normal(*face)
            centre = [sum(p[i] for p in face) / 3 for i in range(3)]
            if sum(n[i] * centre[i] for i in range(3)) < 0:  # wind every face outwards
                face = (face[0], face[2], face[1])
                n = (-n[0], -n[1], -n[2])
            positions.extend(face)
            normals.extend([n, n, n])
            shade = 0.5 + 0.5 * (k / sides)
            colours.extend([(shade, 0.3 + 0.5 * rng.random(), 1.0 - shade, 1.0)] * 3)
    pos_bytes = b"".join(struct.pack("<3f", *p) for p in positions)
    nor_bytes = b"".join(struct.pack("<3f", *n) for n in normals)
    col_bytes = b"".join(struct.pack("<4f", *c) for c in colours) if painted else b""
    binary = pos_bytes + nor_bytes + col_bytes
    count = len(positions)
    mins = [min(p[i] for p in positions) for i in range(3)]
    maxs = [max(p[i] for p in positions) for i in range(3)]
    colour = _hsv(rng.random(), 0.6, 0.9)
    attributes: dict[str, int] = {"POSITION": 0, "NORMAL": 1}
    views = [
        {"buffer": 0, "byteOffset": 0, "byteLength": len(pos_bytes)},
        {"buffer": 0, "byteOffset": len(pos_bytes), "byteLength": len(nor_bytes)},
    ]
    accessors: list[dict[str, Any]] = [
        {
            "bufferView": 0,
            "componentType": 5126,
            "count": count,
            "type": "VEC3",
            "min": mins,
            "max": maxs,
        },
        {"bufferView": 1, "componentType": 5126, "count": count, "type": "VEC3"},
    ]
    if painted:
        views.append(
            {
                "buffer": 0,
                "byteOffset": len(pos_bytes) + len(nor_bytes),
                "byteLength": len(col_bytes),
            }
        )
        accessors.append({"bufferView": 2, "componentType": 5126, "count": count, "type": "VEC4"})
        attributes["COLOR_0"] = 2
    gltf = {
        "asset": {"version": "2.0", "generator": "studio sandbox"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "sandbox-output"}],
        "meshes": [{"primitives": [{"attributes": attributes, "material": 0}]}],
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [c / 255 for c in colour] + [1.0],
                    "metallicFactor": 0.1,
                    "roughnessFactor": 0.6,
                }
            }
        ],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    json_chunk = json.dumps(gltf, separators=(",", ":")).encode()
    json_chunk += b" " * (-len(json_chunk) % 4)
    binary += b"\0" * (-len(binary) % 4)
    length = 12 + 8 + len(json_chunk) + 8 + len(binary)
    return (
        struct.pack("<4sII", b"glTF", 2, length)
        + struct.pack("<I4s", len(json_chunk), b"JSON")
        + json_chunk
        + struct.pack("<I4s", len(binary), b"BIN\0")
        + binary
    )


def _normal(
    a: Sequence[float], b: Sequence[float], c: Sequence[float]
) -> tuple[float, float, float]:
    u = [b[i] - a[i] for i in range(3)]
    v = [c[i] - a[i] for i in range(3)]
    n = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
    length = math.sqrt(sum(x * x for x in n)) or 1.0
    return (n[0] / length, n[1] / length, n[2] / length)
