"""16-bit PNGs at their full depth. Pillow opens a 16-bit RGB(A) PNG as 8-bit RGB, dropping the low byte of every
sample, and cannot write one; an image folder of such PNGs would come back at 8 bits. This codec reads every
16-bit PNG (grey, grey + alpha, RGB, RGBA; alpha dropped, as Pillow's RGB conversion does for 8-bit images) and
writes 16-bit grey or RGB, both per the PNG specification (ISO/IEC 15948), in plain numpy and zlib."""

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}   # PNG colour type -> samples per pixel


class PngError(ValueError):
    """The file is not a PNG this codec reads (the message says why)."""


def header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG file, or None when it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(29)
    if len(head) < 29 or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _chunks(data: bytes):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-row filters (none, sub, up, average, Paeth) of a non-interlaced image."""
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        elif kind in (1, 3, 4):   # these depend on the bytes to the left: one pixel (bpp bytes) at a time
            cur = line.copy()
            for x in range(0, stride, bpp):
                left = cur[x - bpp:x] if x else np.zeros(bpp, np.int32)
                up, upleft = prev[x:x + bpp], prev[x - bpp:x] if x else np.zeros(bpp, np.int32)
                pred = left if kind == 1 else (left + up) // 2 if kind == 3 else _paeth(left, up, upleft)
                cur[x:x + bpp] = (line[x:x + bpp] + pred) & 0xFF
        else:
            raise PngError(f"unknown PNG row filter {kind}")
        out[y], prev = cur, cur
    return out.astype(np.uint8)


def read(path: Path) -> np.ndarray:
    """A 16-bit PNG as uint16 [H, W, 1 or 3] (grey or RGB; alpha dropped)."""
    data = Path(path).read_bytes()
    if data[:8] != SIGNATURE:
        raise PngError("not a PNG")
    chunks = list(_chunks(data))
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise PngError("no PNG header")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 16 or colour not in CHANNELS:
        raise PngError(f"not a 16-bit PNG (bit depth {depth}, colour type {colour})")
    if interlace:
        raise PngError("an interlaced 16-bit PNG")
    if not (0 < width <= 1 << 14 and 0 < height <= 1 << 14):
        raise PngError(f"size {width}x{height} out of range")
    n = CHANNELS[colour]
    stride = width * n * 2
    try:
        raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    except zlib.error as e:
        raise PngError(f"damaged image data: {e}")
    if len(raw) != height * (stride + 1):
        raise PngError(f"image data of {len(raw)} bytes for {width}x{height}x{n} (truncated?)")
    pixels = _unfilter(np.frombuffer(raw, np.uint8), height, stride, n * 2)
    samples = pixels.view(">u2").reshape(height, width, n).astype(np.uint16)
    return samples[..., :1] if n in (1, 2) else samples[..., :3]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode(samples: np.ndarray) -> bytes:
    """uint16 [H, W] (grey) or [H, W, 3] (RGB) -> the bytes of a 16-bit PNG (rows unfiltered, zlib level 6)."""
    arr = np.asarray(samples, np.uint16)
    arr = arr[..., None] if arr.ndim == 2 else arr
    height, width, n = arr.shape
    if n not in (1, 3):
        raise PngError(f"{n} channels: a 16-bit PNG is written grey (1) or RGB (3)")
    rows = arr.astype(">u2").reshape(height, width * n).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0 if n == 1 else 2, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
