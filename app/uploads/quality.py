"""Photo checks before the agent sees them (issue 21): what makes agents ask again.

When a photo completes, its clean copy is measured for blur, darkness, washed-out or glaring
light, a document not filling the frame and a page turned sideways. What is found becomes a
warning in Chinese, stored with the upload and shown to the resident, who may still submit:
nothing is ever refused because of a warning.

Only photos are checked: JPEG, HEIC and WebP files (what phone cameras make), stored as JPEG,
for any purpose but a staff member's card photo (a face, not a document). PNGs (screenshots,
scanner apps' output) and PDFs are not photographs of paper and get no warnings.

Everything is measured with Pillow alone on a grey copy at most `ANALYSIS_SIDE` pixels on its
longer side, decoded straight at that size from the JPEG (its DCT scaling: a 12 MP photo is
read at a quarter), which is what keeps the check cheap (bench/uploads.py prints its cost).
Blur is judged relative to that size, that is to the frame: a 12 MP photo slightly soft at
full size is sharp enough to read, and is not warned about.

The measures:

- **where the document is**: the bounding box of the edges of a 1/4-size copy, trimmed of the
  outer 1% of edge mass on each side (a stray speck does not widen it). Its share of the frame
  is `fill`; every other measure is taken inside it, so a dark table or a bright wall around
  the paper does not count.
- **sharpness**: the strength of the strongest edges (differences between neighbouring
  pixels, the top 0.25%) over that of the same edges at a quarter of the size (the top 1%
  there), at the analysis size and at half of it; the lower. A sharp edge is as strong at
  both scales (1 and more, more for thin strokes); blur weakens the finer scale first. It
  does not depend on the light (a dark photo is not blurry) nor on how much text there is.
- **light**: the paper's brightness (90th percentile inside the box), the ink's (1st
  percentile), and the share of clipped pixels (250 and above).
- **text direction**: text lines make the row profile of edge strength (one value per row)
  stripy: lines and gaps alternate. Turned 90° the column profile is the stripy one. The
  measure is the rows' stripiness over the columns', each the mean distance of the profile
  from its moving average relative to its mean.

Limits of the direction check: it sees text lines, not which way up they are, so a page
upside down (180°) passes; a tilt of less than about 30° passes; a page without lines of text
(a photo, a drawing, a full grid of a table) is not judged (the ratio stays near 1); text set
vertically (竖排) looks sideways to it. Chinese text on a grid is stripy in both directions,
but the gaps between lines are wider than those between characters, which is what it uses.
Other limits: a textured background (wood grain, a patterned cloth) has edges everywhere, so a
small document on it is not found small; a photo whose whole white paper is clipped by
overexposure but whose ink is still black cannot be told from a scanner app's clean output,
and is not warned about (the text is readable).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from PIL import Image, ImageChops
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.models import Upload

log = logging.getLogger("daiban.uploads")

# ---------------------------------------------------------------------------------------------
# Thresholds. Chosen on documents drawn in code as tests/uploads/test_photo_checks.py draws
# them (lines of Chinese-style glyphs on a grid, ink 25 on off-white paper 236 on a brown
# table, camera noise of sigma 5, JPEG quality 90) at 640x480, 1080x1440, 1600x1200 and
# 4032x3024, spoilt as the tests spoil them. Measured 2026-12-05 (docs/uploads.md has the table):
#   sharpness  a page 1.44-1.76, a ruled form 0.99-1.84, a page far away 0.98-1.31, a scene of
#              shapes 1.03-1.08, GaussianBlur radius 1 0.73-1.27, radius 2 at 1080-1600 px
#              0.61-0.63 | radius 3, 4, 6 at 1080-1600 px 0.35-0.47, radius 2 at 640 px 0.47.
#              At 4032 px the same blurs are 5 times smaller against the frame: radius 6 0.59.
#   paper      a page 234-240, darkened to 55% 129-135 | darkened to 30% 70-76.
#   ink        a page 17-25; blurred up to 119 (paper 224-236); white-clipped paper with black
#              ink (brightened 1.8x, a scanner app's page) 17-45 | washed out (brightened 1.6x
#              and half blended with white) 138-146, paper 254-255.
#   clipped    a page 0-0.002; clipped white paper 0.56-0.75 with median 252-253 | a white
#              reflection over a sixth of the page 0.055-0.066 with median 232-233.
#   fill       filling the frame 0.75-0.90, at 60% of its width and height 0.32 | at a third 0.10.
#   lines      upright 2.4-8.9, a ruled form 1.5-2.9, blurred upright 1.1-3.4, a scene 0.8-1.1
#              | turned 90 degrees 0.11-0.43.
# Each threshold sits between the groups (not warned | warned), nearer the side not to warn:
ANALYSIS_SIDE: Final = 800
BLURRY_BELOW: Final = 0.55  # sharpness: radius 3 at 1080-1600 px is below, radius 2 above
DARK_BELOW: Final = 100  # paper: under ~40% of a white page's proper brightness
WASHED_INK_ABOVE: Final = 120  # ink: the darkest 1% not darker than mid-grey ...
WASHED_PAPER_FROM: Final = 248  # ... on paper burnt white: washed out (not merely blurred)
GLARE_LEVEL: Final = 250  # a pixel of the 1/4-size copy at or above this is clipped
GLARE_SHARE_ABOVE: Final = 0.04  # clipped over 4% of the document ...
GLARE_PAPER_BELOW: Final = 245  # ... whose paper (the median) is not itself white: reflection
FILL_BELOW: Final = 0.2  # the document's box under a fifth of the frame (about half its width)
SIDEWAYS_BELOW: Final = 0.6  # the columns at least 1.67 times as stripy as the rows
# Below these there is nothing to judge (a plain wall, a blank page): no structure warnings.
EDGE_LEVEL: Final = 24  # an edge pixel of the 1/4-size copy: neighbours differing this much
MIN_EDGE_SHARE: Final = 0.002  # of the 1/4-size copy's pixels
MIN_SIDE: Final = 48  # the document's box, in analysis pixels, for sharpness and direction
MIN_COARSE_SIDE: Final = 12  # the coarse copy a sharpness ratio is taken against

WarningCode = Literal["blurry", "too_dark", "too_bright", "not_filling", "sideways"]

MESSAGES: Final[dict[WarningCode, str]] = {
    "blurry": "照片模糊,请重拍",
    "too_dark": "照片太暗,请到光线好的地方重拍",
    "too_bright": "照片过亮或反光,请避开强光重拍",
    "not_filling": "证件没有占满画面,请靠近拍摄",
    "sideways": "照片方向不对,请摆正后重拍",
}

# Photos from a camera; a PNG or a PDF is not checked.
CHECKED_TYPES: Final = frozenset({"image/jpeg", "image/heic", "image/webp"})
UNCHECKED_PURPOSES: Final = frozenset({"staff_photo"})


class PhotoWarning(msgspec.Struct, kw_only=True):
    """Something in a photo that makes agents ask again; the resident may still submit."""

    code: WarningCode
    message: str


@dataclass(frozen=True, slots=True)
class Measures:
    """What was measured on one photo (None: nothing to judge it on)."""

    width: int  # of the analysis copy
    height: int
    fill: float | None
    sharpness: float | None
    paper: int
    ink: int
    median: int
    clipped: float
    lines: float | None


def should_check(declared_type: str, stored_type: str, purpose: str) -> bool:
    declared = declared_type.split(";", 1)[0].strip().lower()
    return (
        declared in CHECKED_TYPES
        and stored_type == "image/jpeg"
        and purpose not in UNCHECKED_PURPOSES
    )


def check_photo(
    data: bytes, declared_type: str, stored_type: str, purpose: str
) -> list[dict[str, str]]:
    """The warnings to store for a completed upload (the clean copy's bytes), as JSON.

    CPU-bound (tens of milliseconds): run it in a worker thread. Never raises: a photo the
    checks cannot read gets no warnings, and is kept as verification decided."""
    if not should_check(declared_type, stored_type, purpose):
        return []
    try:
        found = warnings_for(measure(data))
    except Exception:
        log.exception("photo checks failed")
        return []
    return [msgspec.to_builtins(w) for w in found]


def warnings_for(m: Measures) -> list[PhotoWarning]:
    codes: list[WarningCode] = []
    if m.sharpness is not None and m.sharpness < BLURRY_BELOW:
        codes.append("blurry")
    if m.paper < DARK_BELOW:
        codes.append("too_dark")
    washed = m.ink > WASHED_INK_ABOVE and m.paper >= WASHED_PAPER_FROM
    glare = m.clipped > GLARE_SHARE_ABOVE and m.median < GLARE_PAPER_BELOW
    if washed or glare:
        codes.append("too_bright")
    if m.fill is not None and m.fill < FILL_BELOW:
        codes.append("not_filling")
    if m.lines is not None and m.lines < SIDEWAYS_BELOW:
        codes.append("sideways")
    return [PhotoWarning(code=c, message=MESSAGES[c]) for c in codes]


def measure(data: bytes) -> Measures:
    """Measure a JPEG (the clean copy, already turned as its EXIF said)."""
    grey = _analysis_copy(data)
    width, height = grey.size
    coarse = grey.reduce(4) if min(width, height) >= 64 else grey
    factor = width / coarse.width
    box = _document_box(coarse)
    fill = None
    document = grey
    if box is not None:
        left, top, right, bottom = box
        fill = (right - left) * (bottom - top) / (coarse.width * coarse.height)
        document = grey.crop(
            (
                math.floor(left * factor),
                math.floor(top * factor),
                min(width, math.ceil(right * factor)),
                min(height, math.ceil(bottom * factor)),
            )
        )
    hist = document.histogram()
    paper = _percentile(hist, 0.90)
    ink = _percentile(hist, 0.01)
    median = _percentile(hist, 0.50)
    # On the 1/4-size copy: a reflection is a patch, which survives averaging; bright noise
    # and JPEG ringing round black strokes do not.
    patches = (document.reduce(4) if min(document.size) >= 16 else document).histogram()
    clipped = sum(patches[GLARE_LEVEL:]) / sum(patches)
    sharpness = lines = None
    if box is not None and min(document.size) >= MIN_SIDE:
        fine = _edges(document)
        sharpness = _sharpness(document)
        lines = _lines(fine)
    return Measures(width, height, fill, sharpness, paper, ink, median, clipped, lines)


def _analysis_copy(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
        width, height = image.size
        scale = min(1.0, ANALYSIS_SIDE / max(width, height))
        # The decoder picks the smallest of 1/1, 1/2, 1/4, 1/8 at least this large.
        image.draft("L", (math.ceil(width * scale), math.ceil(height * scale)))
        grey = image.convert("L")
    if max(grey.size) > ANALYSIS_SIDE:
        grey.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BOX, reducing_gap=None)
    return grey


def _edges(image: Image.Image) -> Image.Image:
    """Edge strength: the larger of the differences to the left and to the upper neighbour.

    A first difference: it answers a sharp step of contrast C with C, and camera noise far
    less than a Laplacian (FIND_EDGES) would, which would drown a blurred page in noise."""
    across = ImageChops.difference(image, ImageChops.offset(image, 1, 0))
    down = ImageChops.difference(image, ImageChops.offset(image, 0, 1))
    edges = ImageChops.lighter(across, down)
    # offset() wraps round: the first row and column compare opposite sides of the picture.
    return edges.crop((1, 1, max(2, edges.width), max(2, edges.height)))


def _profile(image: Image.Image, axis: Literal["rows", "columns"]) -> list[int]:
    """The mean of each row (or column): a box reduction to one pixel across."""
    size = (1, image.height) if axis == "rows" else (image.width, 1)
    return list(image.resize(size, Image.Resampling.BOX).tobytes())


def _document_box(coarse: Image.Image) -> tuple[int, int, int, int] | None:
    """Where the edges are in the 1/4-size copy (left, top, right, bottom), or None."""
    edges = _edges(coarse)
    mask = edges.point([0] * EDGE_LEVEL + [255] * (256 - EDGE_LEVEL))
    hist = mask.histogram()
    if hist[255] < MIN_EDGE_SHARE * mask.width * mask.height:
        return None
    top, bottom = _span(_profile(mask, "rows"))
    left, right = _span(_profile(mask, "columns"))
    # +1: the edge image lost its outermost pixels.
    return left + 1, top + 1, right + 1, bottom + 1


def _span(profile: Sequence[int], trim: float = 0.01) -> tuple[int, int]:
    """The range holding the profile's mass but `trim` of it at each end."""
    total = sum(profile)
    low, high = total * trim, total * (1 - trim)
    seen, start, end = 0, 0, len(profile)
    for i, value in enumerate(profile):
        if seen <= low < seen + value:
            start = i
        seen += value
        if seen >= high:
            end = i + 1
            break
    return start, max(end, start + 1)


def _percentile(hist: Sequence[int], q: float) -> int:
    target, seen = q * sum(hist), 0
    for value, count in enumerate(hist):
        seen += count
        if seen >= target and count:
            return value
    return len(hist) - 1


def _sharpness(document: Image.Image) -> float | None:
    """The strong edges' strength at a scale over the same at a quarter of it, at the
    analysis size and at half of it (a heavy blur is seen at the second); the lower."""
    ratios = []
    for scale in (1, 2):
        fine = document.reduce(scale) if scale > 1 else document
        if min(fine.size) < 4 * MIN_COARSE_SIDE:
            break
        strong = _percentile(_edges(fine.reduce(4)).histogram(), 0.99)
        if strong < EDGE_LEVEL:  # nothing with contrast at the coarse scale
            break
        # An edge of length L is L pixels long here and L/4 at a quarter, among 16 times
        # fewer pixels: the same edges are the top 1% there and the top 0.25% here.
        ratios.append(_percentile(_edges(fine).histogram(), 0.9975) / strong)
    return min(ratios) if ratios else None


def _lines(edges: Image.Image) -> float | None:
    window = max(9, min(edges.size) // 12)
    rows, columns = _profile(edges, "rows"), _profile(edges, "columns")
    if min(len(rows), len(columns)) < 3 * window:
        return None
    across = _stripiness(columns, window)
    if across == 0:
        return None
    return _stripiness(rows, window) / across


def _stripiness(profile: Sequence[int], window: int) -> float:
    """Mean distance of the profile from its moving average, relative to its mean."""
    n = len(profile)
    sums = [0]
    for value in profile:
        sums.append(sums[-1] + value)
    mean = sums[-1] / n
    if mean == 0:
        return 0.0
    half = window // 2
    distance = 0.0
    for i, value in enumerate(profile):
        a, b = max(0, i - half), min(n, i + half + 1)
        distance += abs(value - (sums[b] - sums[a]) / (b - a))
    return distance / n / mean


# ---------------------------------------------------------------------------------------------
# Reading warnings back: for an order's checklist, and for the figures.


def stored_warnings(raw: Any) -> list[PhotoWarning]:
    """The warnings stored on an upload row (NULL for files completed before the checks)."""
    return msgspec.convert(raw or [], list[PhotoWarning])


class RoundsGroup(msgspec.Struct, rename="camel", kw_only=True):
    """Supplement rounds (补正 notices) of a group of orders."""

    orders: int
    supplemented: int  # orders with at least one round
    rounds: int  # all rounds together
    supplement_rate: float | None  # supplemented / orders
    mean_rounds: float | None  # rounds / orders


class RoundsByWarnings(msgspec.Struct, rename="camel", kw_only=True):
    with_warnings: RoundsGroup
    without: RoundsGroup


def rounds_by_warnings(
    session: Session,
    rounds: Mapping[int, int],
    orders: Select[Any],
    purposes: Sequence[str] = ("material",),
) -> RoundsByWarnings:
    """Supplement rounds of some orders (`rounds`: each order's, by its id), split by
    whether any of their photos of the given purposes (the resident's materials,
    supplements included) had a warning. `orders` selects the same orders' ids: the photos
    are read with it as a subquery, in one statement however many orders a district's year
    holds (ids sent as values would be a statement per thousand)."""
    warned = {
        order_id
        for order_id, raw in session.execute(
            select(Upload.order_id, Upload.warnings).where(
                Upload.order_id.in_(orders.scalar_subquery()),
                Upload.purpose.in_(purposes),
            )
        )
        if raw
    }

    def group(members: list[int]) -> RoundsGroup:
        total = sum(rounds[i] for i in members)
        supplemented = sum(1 for i in members if rounds[i] > 0)
        n = len(members)
        return RoundsGroup(
            orders=n,
            supplemented=supplemented,
            rounds=total,
            supplement_rate=round(supplemented / n, 4) if n else None,
            mean_rounds=round(total / n, 2) if n else None,
        )

    return RoundsByWarnings(
        with_warnings=group([i for i in rounds if i in warned]),
        without=group([i for i in rounds if i not in warned]),
    )
