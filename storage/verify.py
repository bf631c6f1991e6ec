"""Check that an upload really is the image, PDF or voice note it claims to be, and clean it
for storage.

Images are decoded (at most `max_decoded_pixels`: a JPEG larger than that is decoded at a
half, quarter or eighth of its size, which its format allows cheaply; any other image must
fit) and re-encoded without EXIF or GPS. PDFs are parsed with pypdf and refused when broken
or when they carry active content (scripts, launch or submit actions, embedded files, XFA
forms); a clean PDF is kept byte for byte, so signatures inside it stay valid. Voice notes
(MP3, AAC) are read frame by frame in storage/audio.py, for what they are and how long."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from storage.audio import AAC, M4A, MP3, NotAudio, read_audio

ALLOWED_TYPES: Final = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"}
)
# Voice notes (语音留言), as the mini-program's recorder writes them: MP3, or AAC as ADTS
# frames (.aac) or in an MP4 container (.m4a). Any of the three may be declared for any of
# them (phones name the recorder's "aac" either way); what is stored says what it is.
AUDIO_TYPES: Final = frozenset({MP3, AAC, M4A})
# A recording may run this much past the limit: the recorder stops on time, but the last
# frame it writes is whole (up to 64 ms), and an encoder pads the start.
AUDIO_GRACE_MS: Final = 1000
MIN_AUDIO_MS: Final = 500

# Enough for every signature sniff() knows, including an ftyp box with a few compatible brands.
SNIFF_BYTES: Final = 64
THUMBNAIL_MAX_SIDE: Final = 320
JPEG_QUALITY: Final = 85
THUMBNAIL_QUALITY: Final = 80

_PDF_EOF_WINDOW: Final = 1024
MAX_PDF_PAGES: Final = 200
# Objects a PDF check visits at most: a real document has a few thousand; more is refused.
MAX_PDF_OBJECTS: Final = 100_000
# Keys and action types that make a PDF do something when opened or clicked.
_PDF_ACTIVE_KEYS: Final = frozenset(
    {
        "/JavaScript",
        "/JS",
        "/Launch",
        "/EmbeddedFiles",
        "/EF",  # a file specification's embedded file, whatever its /Type says
        "/RichMedia",
        "/XFA",
        "/AA",
        "/OpenAction",
    }
)
_PDF_ACTIVE_ACTIONS: Final = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
        "/GoToR",
        "/RichMediaExecute",
        "/Rendition",
        "/Sound",
        "/Movie",
    }
)
_AFTER_EOF: Final = re.compile(rb"%%EOF[\s\x00]*$")

# Major brands pillow-heif accepts as HEVC-coded HEIF; mif1/msf1 are generic HEIF.
_HEIC_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_HEVC_BRANDS: Final = _HEIC_BRANDS - {b"mif1", b"msf1"}
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

_PIL_FORMAT: Final = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
}

# Start-of-frame markers (baseline, progressive, lossless, arithmetic); DHT/JPG/DAC are excluded.
_JPEG_SOF: Final = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)

# What Pillow raises for data it cannot parse or decode.
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
)

_MESSAGES: Final = {
    "file_empty": "上传的文件是空的,请重新拍照上传",
    "file_type_mismatch": "这个文件不是照片或 PDF 文件,请重新拍照上传",
    "file_type_unsupported": (
        "暂时不能处理这种照片,请在手机相机设置里选“兼容性最佳”后重新拍照上传"
    ),
    "file_corrupt": "照片文件已损坏,请重新拍照上传",
    "decompression_bomb": "照片太大了,无法处理,请用手机相机重新拍照上传",
    "image_too_large": "照片太大了,无法处理,请用手机相机重新拍照上传",
    "image_too_small": "照片太小,看不清楚,请重新拍一张清楚的照片上传",
    "pdf_invalid": "PDF 文件已损坏或不完整,请重新上传",
    "pdf_encrypted": "PDF 文件设有密码,无法查看,请上传没有密码的文件或拍照上传",
    "pdf_active_content": "PDF 文件中含有脚本、附件或自动操作,不能上传;请打印后拍照上传",
    "pdf_too_many_pages": f"PDF 文件超过{MAX_PDF_PAGES}页,请只上传需要的页面",
    "audio_invalid": "这段录音无法播放,请重新录音",
    "audio_too_long": "录音太长了,请在60秒以内",  # the limit is a setting: said as it is set
    "audio_too_short": "录音太短了,请按住多说几句",
}


# Every code verification can refuse a file with (for the API's description).
VERIFICATION_CODES: Final = (*_MESSAGES, "file_too_large")


class VerificationError(Exception):
    """An upload was refused: `code` is for programs, `message` is shown to the resident."""

    def __init__(self, code: str, message: str | None = None) -> None:
        # Both go into args so the error survives pickling across a process pool.
        self.code = code
        self.message = message if message is not None else _MESSAGES[code]
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Verified:
    """What to store: cleaned bytes, their type and hash, and a preview for images."""

    content_type: str
    data: bytes
    size: int
    sha256: str
    width: int | None
    height: int | None
    thumbnail: bytes | None
    thumbnail_type: str | None
    duration_ms: int | None = None  # a voice note's


class _Limits(NamedTuple):
    max_pixels: int  # what a file may claim at all
    max_decoded_pixels: int  # what is decoded into memory
    min_side: int
    max_side: int


def sniff(head: bytes) -> str | None:
    """Content type from the magic bytes at the start of a file (pass SNIFF_BYTES of it)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if _is_heic(head):
        return "image/heic"
    return None


def _is_heic(head: bytes) -> bool:
    if len(head) < 16 or head[4:8] != b"ftyp" or head[8:12] not in _HEIC_BRANDS:
        return False
    box_size = int.from_bytes(head[:4], "big")
    end = min(box_size, len(head))
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    # A generic mif1 container holding AV1 is AVIF, which libheif here cannot decode.
    return head[8:12] in _HEVC_BRANDS or not (compatible & _AVIF_BRANDS)


def verify(
    data: bytes,
    declared_type: str,
    *,
    max_bytes: int,
    max_pixels: int = 40_000_000,
    max_decoded_pixels: int = 20_000_000,
    min_side: int = 200,
    max_side: int = 10_000,
) -> Verified:
    """Check an upload against its declared type and return the bytes to store.

    Raises VerificationError. CPU-bound and synchronous: run it in a worker thread.
    """
    if not data:
        raise VerificationError("file_empty")
    if len(data) > max_bytes:
        raise VerificationError(
            "file_too_large", f"文件太大了,不能超过 {_megabytes(max_bytes)} MB,请重新拍照上传"
        )
    # MIME types are case-insensitive and may carry parameters; the type itself must match.
    declared = declared_type.split(";", 1)[0].strip().lower()
    sniffed = sniff(data[:SNIFF_BYTES])
    if sniffed is None or sniffed != declared:
        raise VerificationError("file_type_mismatch")
    if sniffed == "application/pdf":
        return _verify_pdf(data)
    limits = _Limits(max_pixels, max_decoded_pixels, min_side, max_side)
    return _verify_image(data, sniffed, limits)


def verify_audio(data: bytes, declared_type: str, *, max_bytes: int, max_seconds: int) -> Verified:
    """Check a voice note: audio of a kind the recorder makes, played through to its end,
    at most `max_seconds` long (and AUDIO_GRACE_MS). Returns what to keep: an MP3's or
    ADTS stream's frames without tags, an M4A as it is. Raises VerificationError."""
    if not data:
        raise VerificationError("file_empty", "录音文件是空的,请重新录音")
    if len(data) > max_bytes:
        raise VerificationError(
            "file_too_large", f"录音文件太大了,不能超过 {_megabytes(max_bytes)} MB,请重新录音"
        )
    if declared_type.split(";", 1)[0].strip().lower() not in AUDIO_TYPES:
        raise VerificationError("audio_invalid")
    try:
        audio = read_audio(data)
    except NotAudio as exc:
        raise VerificationError(exc.code) from None
    if audio.duration_ms > max_seconds * 1000 + AUDIO_GRACE_MS:
        raise VerificationError("audio_too_long", f"录音太长了,请在{max_seconds}秒以内")
    if audio.duration_ms < MIN_AUDIO_MS:
        raise VerificationError("audio_too_short")
    return Verified(
        content_type=audio.content_type,
        data=audio.data,
        size=len(audio.data),
        sha256=hashlib.sha256(audio.data).hexdigest(),
        width=None,
        height=None,
        thumbnail=None,
        thumbnail_type=None,
        duration_ms=audio.duration_ms,
    )


def _megabytes(n: int) -> str:
    return f"{round(n / (1024 * 1024), 1):g}"


def _verify_pdf(data: bytes) -> Verified:
    # Nothing but white space may follow the last end marker: a ZIP or an HTML page appended
    # to a real PDF (a polyglot) is refused, not stored.
    if not data.startswith(b"%PDF-") or not _AFTER_EOF.search(data[-_PDF_EOF_WINDOW:]):
        raise VerificationError("pdf_invalid")
    try:
        reader = PdfReader(io.BytesIO(data), strict=True)
        if reader.is_encrypted:
            raise VerificationError("pdf_encrypted")
        pages = len(reader.pages)
        if pages == 0:
            raise VerificationError("pdf_invalid")
        if pages > MAX_PDF_PAGES:
            raise VerificationError("pdf_too_many_pages")
        active = _pdf_active_content(reader.trailer)
    except VerificationError:
        raise
    except Exception as exc:  # pypdf's errors, and what a malformed file makes it raise
        raise VerificationError("pdf_invalid") from exc
    if active:
        raise VerificationError("pdf_active_content")
    return Verified(
        content_type="application/pdf",
        data=data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width=None,
        height=None,
        thumbnail=None,
        thumbnail_type=None,
    )


def _pdf_active_content(trailer: DictionaryObject) -> bool:
    """True when any object reachable from the trailer scripts, launches, submits, embeds a
    file or runs an action on opening. Names are compared after pypdf has decoded #xx
    escapes, so /J#61vaScript is /JavaScript here."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [trailer]
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        visited += 1
        if visited > MAX_PDF_OBJECTS:
            raise VerificationError("pdf_invalid")
        if isinstance(node, DictionaryObject):
            if _PDF_ACTIVE_KEYS & set(node.keys()):
                return True
            action = node.get("/S")
            if isinstance(action, IndirectObject):
                action = action.get_object()
            if isinstance(action, NameObject) and action in _PDF_ACTIVE_ACTIONS:
                return True
            # An attached file, whether or not its file specification says /Type /Filespec.
            if node.get("/Subtype") in ("/FileAttachment", "/RichMedia", "/Screen"):
                return True
            stack.extend(node.values())
        elif isinstance(node, ArrayObject):
            stack.extend(node)
        # Streams are dictionaries too (pypdf's StreamObject); their bytes are never run.
    return False


def _verify_image(data: bytes, content_type: str, limits: _Limits) -> Verified:
    # Read the size from the header ourselves before Pillow sees the file: Pillow's WebP plugin
    # allocates the canvas while opening, and its own guard (Image.MAX_IMAGE_PIXELS) is a global
    # other code may loosen. HEIC has no reader here; libheif parses it lazily with its own limits.
    reader = _HEADER_READERS.get(content_type)
    if reader is not None:
        dims = reader(data)
        if dims is None:
            raise VerificationError("file_corrupt")
        _check_dimensions(dims, limits)
        _scale(dims, content_type, limits)  # refused here, before a byte is decoded

    image = _open(data, content_type)
    with image:
        _check_dimensions(image.size, limits)
        scale = _scale(image.size, content_type, limits)
        if scale > 1:
            # JPEG decodes at 1/2, 1/4 or 1/8 of its size for a fraction of the memory. Pillow
            # picks the largest reduction that keeps at least the size asked for, so ask for
            # the reduced size rounded down, and check what it chose.
            width, height = image.size
            image.draft(image.mode, (width // scale, height // scale))
        if image.size[0] * image.size[1] > limits.max_decoded_pixels:
            raise VerificationError("decompression_bomb")
        try:
            # Loads only the current frame: the first one, or the primary image of a HEIF.
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise VerificationError("decompression_bomb") from exc
        except _DECODE_ERRORS as exc:
            raise VerificationError("file_corrupt") from exc

        icc = image.info.get("icc_profile")
        icc = icc if isinstance(icc, bytes) and icc else None
        source_mode = image.mode
        # Malformed EXIF must not block an otherwise good photo; it is dropped below anyway.
        with contextlib.suppress(Exception):
            ImageOps.exif_transpose(image, in_place=True)

        if content_type == "image/png" or _uses_alpha(image):
            out_type, clean = "image/png", _for_png(image)
        else:
            out_type, clean = "image/jpeg", _for_jpeg(image)
        # Pillow's encoders fall back to im.info for ICC, comments and EXIF; with it empty, only
        # what we pass explicitly is written.
        clean.info = {}
        if not _same_colour_space(source_mode, clean.mode):
            icc = None

        stored = _encode(clean, out_type, icc)
        thumbnail = _thumbnail(clean, icc)
        width, height = clean.size

    return Verified(
        content_type=out_type,
        data=stored,
        size=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        width=width,
        height=height,
        thumbnail=thumbnail,
        thumbnail_type="image/jpeg",
    )


def _open(data: bytes, content_type: str) -> Image.Image:
    if content_type == "image/heic" and not _heif_available():
        raise VerificationError("file_type_unsupported")
    try:
        # Restricting to the sniffed format keeps every other plugin's parser away from the bytes.
        return Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[content_type]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise VerificationError("decompression_bomb") from exc
    except _DECODE_ERRORS as exc:
        raise VerificationError("file_corrupt") from exc


@functools.cache
def _heif_available() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    # Registering adds a HEIF opener to Pillow; it changes nothing for formats Pillow already had.
    register: Callable[[], None] = pillow_heif.register_heif_opener
    register()
    return True


def _scale(size: tuple[int, int], content_type: str, limits: _Limits) -> int:
    """How much a picture is reduced while decoding so that it fits `max_decoded_pixels`:
    1, or for a JPEG 2, 4 or 8. Anything that cannot fit is refused."""
    width, height = size
    for scale in (1, 2, 4, 8) if content_type == "image/jpeg" else (1,):
        if math.ceil(width / scale) * math.ceil(height / scale) <= limits.max_decoded_pixels:
            return scale
    raise VerificationError("decompression_bomb")


def _check_dimensions(size: tuple[int, int], limits: _Limits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise VerificationError("file_corrupt")
    if width * height > limits.max_pixels:
        raise VerificationError("decompression_bomb")
    if max(width, height) > limits.max_side:
        raise VerificationError("image_too_large")
    if min(width, height) < limits.min_side:
        raise VerificationError("image_too_small")


def _png_size(data: bytes) -> tuple[int, int] | None:
    # IHDR is always the first chunk, right after the 8-byte signature and its own length field.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            # Pillow skips stray bytes between segments too; some cameras write them.
            i += 1
            continue
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):
            # End of image or start of scan before any frame header: not a usable JPEG.
            return None
        if i + 2 > n:
            return None
        length = int.from_bytes(data[i : i + 2], "big")
        if marker in _JPEG_SOF:
            if length < 7 or i + 7 > n:
                return None
            height = int.from_bytes(data[i + 3 : i + 5], "big")
            width = int.from_bytes(data[i + 5 : i + 7], "big")
            return width, height
        if length < 2:
            return None
        i += length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return width, height
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


_HEADER_READERS: Final[dict[str, Callable[[bytes], tuple[int, int] | None]]] = {
    "image/jpeg": _jpeg_size,
    "image/png": _png_size,
    "image/webp": _webp_size,
}


def _uses_alpha(image: Image.Image) -> bool:
    """True when some pixel is actually see-through; many WebPs carry an all-opaque alpha."""
    if not image.has_transparency_data:
        return False
    rgba = image if image.mode in ("RGBA", "LA") else image.convert("RGBA")
    low = rgba.getchannel("A").getextrema()[0]
    return isinstance(low, int | float) and low < 255


def _grey_16_to_8(image: Image.Image) -> Image.Image:
    # convert("L") would clip 16-bit values at 255 and turn the picture white.
    return image.convert("I").point(lambda v: v / 256).convert("L")


def _for_png(image: Image.Image) -> Image.Image:
    if image.mode in ("LA", "RGBA"):
        return image
    if image.has_transparency_data:
        # tRNS colour keys and palette transparency live in info, which is about to be emptied.
        return image.convert("RGBA")
    if image.mode in ("1", "L", "P", "RGB"):
        return image
    if image.mode.startswith("I"):
        return _grey_16_to_8(image)
    return image.convert("RGB")


def _for_jpeg(image: Image.Image) -> Image.Image:
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "LA"):
        return image.convert("L")
    if image.mode.startswith("I"):
        return _grey_16_to_8(image)
    # CMYK, YCbCr, an opaque RGBA or palette: browsers and viewers expect plain RGB.
    return image.convert("RGB")


def _same_colour_space(source: str, output: str) -> bool:
    # An ICC profile describes the source's colour space; after CMYK->RGB or RGB->L it would lie.
    families = ({"RGB", "RGBA", "RGBX", "P"}, {"L", "LA", "1"})
    return any(source in family and output in family for family in families)


def _encode(
    image: Image.Image, content_type: str, icc: bytes | None, quality: int = JPEG_QUALITY
) -> bytes:
    params: dict[str, Any] = {}
    if icc:
        params["icc_profile"] = icc
    buffer = io.BytesIO()
    if content_type == "image/png":
        image.save(buffer, "PNG", **params)
    else:
        image.save(buffer, "JPEG", quality=quality, optimize=True, **params)
    return buffer.getvalue()


def _thumbnail(image: Image.Image, icc: bytes | None) -> bytes:
    if image.mode == "1":
        small = image.convert("L")
    elif image.mode == "P":
        small = image.convert("RGBA")
    else:
        small = image
    width, height = small.size
    longest = max(width, height)
    if longest > THUMBNAIL_MAX_SIDE:
        scale = THUMBNAIL_MAX_SIDE / longest
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        # reducing_gap shrinks by whole factors first, so big photos resize quickly.
        small = small.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if small.mode in ("RGBA", "LA"):
        # JPEG has no alpha; see-through parts become white, like paper.
        background = Image.new("RGB", small.size, "white")
        background.paste(small.convert("RGB"), mask=small.getchannel("A"))
        small = background
    if not _same_colour_space(image.mode, small.mode):
        icc = None
    return _encode(small, "image/jpeg", icc, THUMBNAIL_QUALITY)
