"""Read a voice note as the WeChat mini-program's recorder makes it, frame by frame or box by
box, and say what it is and how long it plays; anything else is refused.

The recorder (RecorderManager) writes `mp3` (MPEG-1, -2 or -2.5 Layer III) or `aac`, which
some phones write as a raw ADTS stream and others in an MP4 (.m4a) container. Magic bytes
prove nothing here: an MP3 has no signature of its own, only frame headers. So every frame
of an MP3 or ADTS stream is walked from the first to the last: each header must be valid,
say the same sample rate as the first, and end exactly where the next begins, the last at
the end of the file (only an ID3v1 or APE tag may follow). An HTML page, a PDF, random bytes
after an ID3 tag or a lone header in front of junk cannot chain like that. The duration is
the sum of the frames' samples over the sample rate: exact, not estimated from a bit rate.

An MP4 file must be a sequence of boxes that fills it exactly, with one track, a sound
track of AAC ('mp4a'), whose sample table places every sample inside the file's media data;
its duration is the sum of the sample durations (stts) over the track's time scale.

Pure Python, no decoder: a file is at most a few megabytes, and walking it costs
milliseconds. What is kept: an MP3's or an ADTS stream's frames alone (tags in front of or
behind them dropped: an ID3 tag may carry anything, a picture or a name); an MP4 as it is
(the recorder writes nothing personal in it, and rewriting its boxes would move the offsets
its sample table points at)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MP3: Final = "audio/mpeg"
AAC: Final = "audio/aac"  # ADTS frames
M4A: Final = "audio/mp4"  # AAC in an MP4 container

# The Layer III bit rates (kbit/s) by index: MPEG-1, then MPEG-2 and 2.5.
_BITRATES_V1: Final = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2: Final = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# Sample rates by version bits (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5) and index.
_MPEG_RATES: Final = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_ADTS_RATES: Final = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)
_ADTS_SAMPLES: Final = 1024  # per raw data block of AAC
_MAX_DEPTH: Final = 10  # boxes within boxes: moov/trak/mdia/minf/stbl/stsd is 6 deep


class NotAudio(Exception):
    """The bytes are not a voice note this service takes; `code` says why."""

    def __init__(self, code: str = "audio_invalid") -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Audio:
    content_type: str  # what it really is: MP3, AAC (ADTS) or M4A
    duration_ms: int
    sample_rate: int
    data: bytes  # what to keep


def read_audio(data: bytes) -> Audio:
    """What the file is and how long it plays. Raises NotAudio."""
    if len(data) >= 8 and data[4:8] == b"ftyp":
        return _mp4(data)
    start = _after_id3v2(data)
    if len(data) - start >= 4 and data[start] == 0xFF:
        if (data[start + 1] & 0xF6) == 0xF0:  # 12 sync bits, layer 00: ADTS
            return _adts(data, start)
        if (data[start + 1] & 0xE0) == 0xE0:
            return _mp3(data, start)
    raise NotAudio()


def _after_id3v2(data: bytes) -> int:
    """Where the audio begins: after any ID3v2 tags in front (some encoders write two)."""
    at = 0
    while data[at : at + 3] == b"ID3" and len(data) >= at + 10:
        size_bytes = data[at + 6 : at + 10]
        if any(b & 0x80 for b in size_bytes):
            raise NotAudio()  # a tag's size is "synchsafe": seven bits a byte
        size = (size_bytes[0] << 21) | (size_bytes[1] << 14) | (size_bytes[2] << 7) | size_bytes[3]
        footer = 10 if data[at + 5] & 0x10 else 0
        at += 10 + size + footer
        if at > len(data):
            raise NotAudio()
    return at


def _audio_tail(tail: bytes) -> bool:
    """What may follow the last frame: nothing, an ID3v1 tag, or an APE or Lyrics tag."""
    return (
        not tail
        or (len(tail) == 128 and tail.startswith(b"TAG"))
        or tail.startswith((b"APETAGEX", b"LYRICSBEGIN"))
    )


def _mp3_frame(header: bytes) -> tuple[int, int, int] | None:
    """(frame length, samples, sample rate) of a valid Layer III header, else None."""
    b1, b2, b3 = header[1], header[2], header[3]
    if header[0] != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    if version == 1 or layer != 1:  # reserved version; Layer III only (what "mp3" means)
        return None
    bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if bitrate_index in (0, 15) or rate_index == 3 or (b3 & 3) == 2:
        return None  # free format, a bad index, reserved emphasis
    rate = _MPEG_RATES[version][rate_index]
    if version == 3:
        kbps, samples = _BITRATES_V1[bitrate_index], 1152
    else:
        kbps, samples = _BITRATES_V2[bitrate_index], 576
    length = (samples // 8) * kbps * 1000 // rate + padding
    return length, samples, rate


def _mp3(data: bytes, start: int) -> Audio:
    at, end, samples, frames = start, len(data), 0, 0
    first: tuple[int, int] | None = None  # version, sample rate
    cut = False
    while end - at >= 4:
        frame = _mp3_frame(data[at : at + 4])
        if frame is None:
            break
        length, count, rate = frame
        kind = ((data[at + 1] >> 3) & 3, rate)
        if first is None:
            first = kind
        elif kind != first:
            raise NotAudio()  # a stream keeps its version and sample rate throughout
        if at + length > end:
            cut = True  # the last frame cut short (the recorder stopped): dropped
            break
        # The first frame of a LAME or Xing encoder describes the stream; it holds no audio.
        head = data[at : at + 40]
        if frames or not (b"Xing" in head or b"Info" in head):
            samples += count
        frames += 1
        at += length
    if first is None or frames < 2 or samples == 0 or not (cut or _audio_tail(data[at:])):
        raise NotAudio()  # a header or two in front of anything else is not a recording
    return Audio(MP3, samples * 1000 // first[1], first[1], data[start:at])


def _adts(data: bytes, start: int) -> Audio:
    at, end, blocks, frames = start, len(data), 0, 0
    first: tuple[int, int, int] | None = None  # profile, sample rate index, channels
    cut = False
    while end - at >= 7:
        b1, b2, b3, b4, b5, b6 = data[at + 1 : at + 7]
        if data[at] != 0xFF or (b1 & 0xF6) != 0xF0:
            break
        profile, rate_index = b2 >> 6, (b2 >> 2) & 0xF
        channels = ((b2 & 1) << 2) | (b3 >> 6)
        length = ((b3 & 3) << 11) | (b4 << 3) | (b5 >> 5)
        header = 7 if b1 & 1 else 9
        if rate_index >= len(_ADTS_RATES) or profile == 3 or length <= header:
            break
        kind = (profile, rate_index, channels)
        if first is None:
            first = kind
        elif kind != first:
            raise NotAudio()
        if at + length > end:
            cut = True
            break
        blocks += (b6 & 3) + 1
        frames += 1
        at += length
    if first is None or frames < 2 or not (cut or _audio_tail(data[at:])):
        raise NotAudio()
    rate = _ADTS_RATES[first[1]]
    return Audio(AAC, blocks * _ADTS_SAMPLES * 1000 // rate, rate, data[start:at])


# --- MP4 ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Box:
    kind: bytes
    start: int  # of its payload
    end: int


def _boxes(data: bytes, start: int, end: int) -> list[_Box]:
    """The boxes filling data[start:end] exactly; NotAudio when they do not."""
    found, at = [], start
    while at < end:
        if end - at < 8:
            raise NotAudio()
        size = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        header = 8
        if size == 1:
            if end - at < 16:
                raise NotAudio()
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        elif size == 0:
            size = end - at  # to the end
        if size < header or at + size > end or not all(32 <= c < 127 for c in kind):
            raise NotAudio()
        found.append(_Box(kind, at + header, at + size))
        at += size
    return found


def _child(data: bytes, box: _Box, kind: bytes, offset: int = 0) -> _Box:
    matches = [b for b in _boxes(data, box.start + offset, box.end) if b.kind == kind]
    if len(matches) != 1:
        raise NotAudio()
    return matches[0]


def _path(data: bytes, box: _Box, *kinds: bytes) -> _Box:
    for kind in kinds:
        box = _child(data, box, kind)
    return box


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def _mp4(data: bytes) -> Audio:
    top = _boxes(data, 0, len(data))
    if top[0].kind != b"ftyp" or any(b.kind == b"moof" for b in top):
        raise NotAudio()  # fragmented MP4 is a stream's format, not a recorder's
    moovs = [b for b in top if b.kind == b"moov"]
    media = [(b.start, b.end) for b in top if b.kind == b"mdat"]
    if len(moovs) != 1 or not media:
        raise NotAudio()
    traks = [b for b in _boxes(data, moovs[0].start, moovs[0].end) if b.kind == b"trak"]
    if len(traks) != 1:
        raise NotAudio()  # a voice note has one track: a film's picture is refused
    mdia = _path(data, traks[0], b"mdia")
    hdlr = _child(data, mdia, b"hdlr")
    if data[hdlr.start + 8 : hdlr.start + 12] != b"soun":
        raise NotAudio()
    mdhd = _child(data, mdia, b"mdhd")
    version = data[mdhd.start]
    timescale = _u32(data, mdhd.start + (20 if version == 1 else 12))
    stbl = _path(data, mdia, b"minf", b"stbl")
    stsd = _child(data, stbl, b"stsd")
    # stsd: version and flags, an entry count, then sample entries (boxes).
    entries = _boxes(data, stsd.start + 8, stsd.end)
    if _u32(data, stsd.start + 4) != 1 or len(entries) != 1 or entries[0].kind != b"mp4a":
        raise NotAudio()
    rate = _u32(data, entries[0].start + 24) >> 16  # 16.16 fixed point after 24 bytes
    ticks = _sample_ticks(data, _child(data, stbl, b"stts"))
    sizes = _sample_bytes(data, _child(data, stbl, b"stsz"))
    chunk_offsets = _chunk_offsets(data, stbl)
    in_media = sum(end - start for start, end in media)
    if timescale == 0 or ticks == 0 or sizes == 0 or sizes > in_media:
        raise NotAudio()
    for offset in chunk_offsets:
        if not any(start <= offset < end for start, end in media):
            raise NotAudio()  # a chunk outside the media data
    return Audio(M4A, ticks * 1000 // timescale, rate or timescale, data)


def _full_box_count(data: bytes, box: _Box, entry_bytes: int) -> int:
    """The entry count of a table box (version, flags, count, entries), checked to fit."""
    count = _u32(data, box.start + 4)
    if box.end - box.start < 8 + count * entry_bytes:
        raise NotAudio()
    return count


def _sample_ticks(data: bytes, stts: _Box) -> int:
    total = 0
    for i in range(_full_box_count(data, stts, 8)):
        at = stts.start + 8 + 8 * i
        total += _u32(data, at) * _u32(data, at + 4)
    return total


def _sample_bytes(data: bytes, stsz: _Box) -> int:
    if stsz.end - stsz.start < 12:
        raise NotAudio()
    size, count = _u32(data, stsz.start + 4), _u32(data, stsz.start + 8)
    if size:
        return size * count
    if stsz.end - stsz.start < 12 + 4 * count:
        raise NotAudio()
    return sum(_u32(data, stsz.start + 12 + 4 * i) for i in range(count))


def _chunk_offsets(data: bytes, stbl: _Box) -> list[int]:
    boxes = {b.kind: b for b in _boxes(data, stbl.start, stbl.end)}
    if b"stco" in boxes:
        box = boxes[b"stco"]
        n = _full_box_count(data, box, 4)
        return [_u32(data, box.start + 8 + 4 * i) for i in range(n)]
    if b"co64" in boxes:
        box = boxes[b"co64"]
        n = _full_box_count(data, box, 8)
        return [
            int.from_bytes(data[box.start + 8 + 8 * i : box.start + 16 + 8 * i], "big")
            for i in range(n)
        ]
    raise NotAudio()
