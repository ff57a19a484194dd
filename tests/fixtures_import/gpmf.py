"""Write a GoPro-style MP4: an H.264 video track plus a GPMF metadata track (``gpmd``, "GoPro MET").

PyAV cannot tag a data stream ``gpmd``, so the video is written with PyAV and the GPMF track is
appended by hand: a second ``trak`` in ``moov`` (handler ``meta``/"GoPro MET", sample entry
``gpmd``) whose samples live in a second ``mdat`` after ``moov``, and a ``udta/GPMF`` box with the
global settings (model, stabilisation, FOV) the way HERO8+ cameras write them. Payloads follow the
GPMF KLV layout (gopro/gpmf-parser README): ``DEVC`` ⊃ ``DVID``, ``DVNM``, ``STRM`` ⊃ ``STMP``,
``TSMP``, ``STNM``, ``SIUN``, ``SCAL``, ``MTRX``, ``GYRO``/``ACCL`` (int16 triplets).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def klv(key: str, typ: str, size: int, repeat: int, payload: bytes) -> bytes:
    """One KLV item: FourCC, type char, struct size, repeat count (big-endian), data padded to 4."""
    head = key.encode("ascii") + struct.pack(">cBH", typ.encode("ascii"), size, repeat)
    return head + payload + b"\0" * (-len(payload) % 4)


def nest(key: str, children: list[bytes]) -> bytes:
    body = b"".join(children)
    return key.encode("ascii") + struct.pack(">cBH", b"\0", 1, len(body)) + body


def text(key: str, s: str) -> bytes:
    b = s.encode("latin-1")
    return klv(key, "c", len(b), 1, b)


def _stream(name: str, fourcc: str, unit: str, scal: int, t_us: int, total: int, raw: np.ndarray, mtrx: np.ndarray) -> bytes:
    return nest("STRM", [
        klv("STMP", "J", 8, 1, struct.pack(">Q", t_us)),
        klv("TSMP", "L", 4, 1, struct.pack(">I", total)),
        text("STNM", name),
        text("SIUN", unit),
        klv("SCAL", "s", 2, 1, struct.pack(">h", scal)),
        klv("MTRX", "f", 36, 1, np.asarray(mtrx, ">f4").tobytes()),
        klv(fourcc, "s", 6, len(raw), np.asarray(raw, ">i2").tobytes()),
    ])


def gpmf_payload(t_us: int, total: int, gyro_raw: np.ndarray, accel_raw: np.ndarray, gyro_scal: int, accel_scal: int,
                 mtrx: np.ndarray, model: str) -> bytes:
    """One per-second GPMF payload with a gyro and an accelerometer stream."""
    return nest("DEVC", [
        klv("DVID", "L", 4, 1, struct.pack(">I", 1)),
        text("DVNM", model),
        _stream("Gyroscope", "GYRO", "rad/s", gyro_scal, t_us, total, gyro_raw, mtrx),
        _stream("Accelerometer", "ACCL", "m/s\xb2", accel_scal, t_us, total, accel_raw, mtrx),
    ])


def udta_gpmf(model: str, stabilised: bool, fov_mode: str, zfov_deg: float) -> bytes:
    """The global GPMF settings box (``udta/GPMF``) of HERO8+ files."""
    devc = nest("DEVC", [
        klv("DVID", "L", 4, 1, struct.pack(">I", 1)),
        text("MINF", model),
        text("EISE", "Y" if stabilised else "N"),
        text("EISA", "HS High" if stabilised else "N/A"),
        text("VFOV", fov_mode),
        klv("ZFOV", "f", 4, 1, struct.pack(">f", zfov_deg)),
    ])
    return devc


# ------------------------------------------------------------------ MP4 boxes


def box(kind: str, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind.encode("ascii") + body


def full(kind: str, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _children(data: bytes) -> list[tuple[str, int, int]]:
    """Top-level boxes of ``data``: (type, start, end)."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        out.append((kind.decode("latin-1"), pos, pos + size))
        pos += size
    return out


def _gpmd_trak(track_id: int, durations_ms: list[int], sizes: list[int], chunk_offset: int) -> bytes:
    timescale = 1000
    total = sum(durations_ms)
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    tkhd = full("tkhd", 0, 0, struct.pack(">IIIII", 0, 0, track_id, 0, total), b"\0" * 8,
                struct.pack(">hhhH", 0, 0, 0, 0), matrix, struct.pack(">II", 0, 0))
    mdhd = full("mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, total, 0x55C4, 0))
    hdlr = full("hdlr", 0, 0, struct.pack(">I", 0), b"meta", b"\0" * 12, b"GoPro MET\0")
    dref = full("dref", 0, 0, struct.pack(">I", 1), full("url ", 0, 1))
    sample_entry = box("gpmd", b"\0" * 6, struct.pack(">H", 1), b"\0" * 4)
    stts_entries: list[tuple[int, int]] = []
    for d in durations_ms:
        if stts_entries and stts_entries[-1][1] == d:
            stts_entries[-1] = (stts_entries[-1][0] + 1, d)
        else:
            stts_entries.append((1, d))
    stbl = box("stbl",
               full("stsd", 0, 0, struct.pack(">I", 1), sample_entry),
               full("stts", 0, 0, struct.pack(">I", len(stts_entries)), b"".join(struct.pack(">II", *e) for e in stts_entries)),
               full("stsc", 0, 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),
               full("stsz", 0, 0, struct.pack(">II", 0, len(sizes)), b"".join(struct.pack(">I", s) for s in sizes)),
               full("stco", 0, 0, struct.pack(">II", 1, chunk_offset)))
    minf = box("minf", full("nmhd", 0, 0), box("dinf", dref), stbl)
    return box("trak", tkhd, box("mdia", mdhd, hdlr, minf))


def add_gpmf_track(mp4: Path, payloads: list[bytes], durations_ms: list[int], udta_payload: bytes | None = None) -> None:
    """Append a GPMF track (and optionally ``udta/GPMF``) to an MP4 that has ``moov`` after ``mdat``."""
    data = Path(mp4).read_bytes()
    top = _children(data)
    kinds = [k for k, _, _ in top]
    if kinds[-1] != "moov":
        raise ValueError(f"{mp4}: expected moov at the end (got {kinds})")
    _, m0, m1 = top[-1]
    moov_body = data[m0 + 8:m1]
    parts, next_id = [], 1
    for kind, s, e in _children(moov_body):
        chunk = moov_body[s:e]
        if kind == "mvhd":
            version = chunk[8]
            off = 8 + 4 + (28 if version == 1 else 16) + 4 + 2 + 10 + 36 + 24
            next_id = struct.unpack(">I", chunk[off:off + 4])[0]
            chunk = chunk[:off] + struct.pack(">I", next_id + 1) + chunk[off + 4:]
        parts.append(chunk)
    if udta_payload is not None:
        parts.append(box("udta", box("GPMF", udta_payload)))
    sizes = [len(p) for p in payloads]
    trak_len = len(_gpmd_trak(next_id, durations_ms, sizes, 0))
    new_moov_len = 8 + sum(len(p) for p in parts) + trak_len
    mdat_start = m0 + new_moov_len
    trak = _gpmd_trak(next_id, durations_ms, sizes, mdat_start + 8)
    new_moov = box("moov", *parts, trak)
    assert len(new_moov) == new_moov_len
    out = data[:m0] + new_moov + box("mdat", *payloads)
    tmp = Path(str(mp4) + ".tmp")
    tmp.write_bytes(out)
    tmp.replace(mp4)
