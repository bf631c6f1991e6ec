"""Voice notes made in code, as the mini-program's recorder writes them: MP3 (MPEG-2 Layer
III, mono, 16 kHz), AAC as ADTS frames, and AAC in an MP4 (.m4a) container. Every frame is
silence: a Layer III frame whose side information is all zero decodes to nothing, and the
AAC frame is the six bytes of a silent mono AAC-LC block that encoders write."""

from __future__ import annotations

import math
import struct

MP3_RATE = 16_000
MP3_KBPS = 24
MP3_SAMPLES = 576  # a Layer III frame of MPEG-2
_V2_BITRATES = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_V2_RATES = {22050: 0, 24000: 1, 16000: 2}

AAC_RATE = 16_000
AAC_SAMPLES = 1024
_ADTS_RATES = {48000: 3, 44100: 4, 32000: 5, 24000: 6, 22050: 7, 16000: 8, 8000: 11}
SILENT_AAC = bytes([0x21, 0x10, 0x04, 0x60, 0x8C, 0x1C])  # mono AAC-LC, one silent block


def mp3_frame_count(seconds: float) -> int:
    return math.ceil(seconds * MP3_RATE / MP3_SAMPLES)


def mp3_duration_ms(seconds: float) -> int:
    return mp3_frame_count(seconds) * MP3_SAMPLES * 1000 // MP3_RATE


def mp3_frame(rate: int = MP3_RATE, kbps: int = MP3_KBPS) -> bytes:
    """One silent frame: MPEG-2 (0b10) Layer III (0b01), no CRC, mono, original."""
    b1 = 0xE0 | (0b10 << 3) | (0b01 << 1) | 1
    b2 = (_V2_BITRATES.index(kbps) << 4) | (_V2_RATES[rate] << 2)
    header = bytes([0xFF, b1, b2, 0xC4])
    length = 72 * kbps * 1000 // rate
    return header + bytes(length - 4)


def id3v2(payload: bytes = b"") -> bytes:
    """An ID3v2.3 tag holding one title frame (and `payload`)."""
    title = b"\x00voice note"
    frame = b"TIT2" + struct.pack(">I", len(title)) + b"\x00\x00" + title
    body = frame + payload
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + body


def mp3(seconds: float = 5.0, *, tag: bool = True) -> bytes:
    """A recording of `seconds` (rounded up to whole frames), behind an ID3 tag."""
    frames = mp3_frame() * mp3_frame_count(seconds)
    return (id3v2() if tag else b"") + frames


def adts_frame(payload: bytes = SILENT_AAC, rate: int = AAC_RATE) -> bytes:
    """AAC LC (profile 1), mono, no CRC: a 7-byte header and one raw data block."""
    length = 7 + len(payload)
    header = bytes(
        [
            0xFF,
            0xF1,  # sync, MPEG-4, layer 0, no CRC
            (1 << 6) | (_ADTS_RATES[rate] << 2),  # AAC LC, the rate, mono's high bit 0
            (1 << 6) | (length >> 11),  # mono
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,  # buffer fullness 0x7FF: variable bit rate
            0xFC,  # one raw data block
        ]
    )
    return header + payload


def aac_frame_count(seconds: float) -> int:
    return math.ceil(seconds * AAC_RATE / AAC_SAMPLES)


def aac_duration_ms(seconds: float) -> int:
    return aac_frame_count(seconds) * AAC_SAMPLES * 1000 // AAC_RATE


def adts(seconds: float = 5.0) -> bytes:
    return adts_frame() * aac_frame_count(seconds)


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, *parts: bytes, version: int = 0) -> bytes:
    return _box(kind, bytes([version, 0, 0, 0]), *parts)


def m4a(seconds: float = 5.0, *, video: bool = False) -> bytes:
    """AAC in an MP4 container as iPhones record it: ftyp, moov (one sound track), mdat.
    `video` adds a second (picture) track, which a voice note must not have."""
    count = aac_frame_count(seconds)
    samples = SILENT_AAC * count
    ftyp = _box(b"ftyp", b"M4A ", struct.pack(">I", 0), b"M4A mp42isom")

    def moov(offset: int) -> bytes:
        entry = _box(
            b"mp4a",
            bytes(6),
            struct.pack(">H", 1),  # data reference index
            bytes(8),
            struct.pack(">HHHH", 1, 16, 0, 0),  # one channel, 16 bits
            struct.pack(">I", AAC_RATE << 16),
            _full(
                b"esds", b"\x03\x19\x00\x00\x00\x04\x11\x40\x15" + bytes(13) + b"\x05\x02\x14\x08"
            ),
        )
        stbl = _box(
            b"stbl",
            _full(b"stsd", struct.pack(">I", 1), entry),
            _full(b"stts", struct.pack(">III", 1, count, AAC_SAMPLES)),
            _full(b"stsc", struct.pack(">IIII", 1, 1, count, 1)),
            _full(
                b"stsz", struct.pack(">II", 0, count), struct.pack(">I", len(SILENT_AAC)) * count
            ),
            _full(b"stco", struct.pack(">II", 1, offset)),
        )
        minf = _box(
            b"minf",
            _full(b"smhd", bytes(4)),
            _box(b"dinf", _full(b"dref", struct.pack(">I", 1), _full(b"url ", b""))),
            stbl,
        )
        mdhd = _full(b"mdhd", struct.pack(">IIII", 0, 0, AAC_RATE, count * AAC_SAMPLES), bytes(4))

        def trak(handler: bytes, media: bytes) -> bytes:
            hdlr = _full(b"hdlr", bytes(4), handler, bytes(12), b"\x00")
            return _box(b"trak", _full(b"tkhd", bytes(80)), _box(b"mdia", mdhd, hdlr, media))

        tracks = trak(b"soun", minf)
        if video:
            tracks += trak(b"vide", minf)
        mvhd = _full(b"mvhd", struct.pack(">IIII", 0, 0, AAC_RATE, count * AAC_SAMPLES), bytes(80))
        return _box(b"moov", mvhd, tracks)

    head = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(head) + _box(b"mdat", samples)
