"""Split an ink mask into digits: pieces of one digit stay together, touching digits are cut apart.

preprocessing.prepare() finds the ink's connected pieces (_find_pieces), groups them
into digits left to right (_group_pieces: a 5's bar or a 4's second stroke joins its
digit) and cuts a piece too wide for one digit where touching digits meet: at its
thinnest column (_split_wide) or, with the model's help, at the candidate columns
(_candidate_cuts) and cut paths (_cut_paths: where digits' boxes overlap, no column parts
them) whose reading is the most probable (best_partition). strokes.py
groups pen strokes as pieces are grouped (group_boxes) and regroups them with
best_partition. Pure NumPy/OpenCV.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

SPECKLE_FRACTION = 0.01  # pieces whose box is below this share of the image side are noise
MAX_PIECES = 60  # more separate pieces than this is noise or text, not a number: keep the largest
MERGE_OVERLAP = 0.5  # pieces overlapping this much of the narrower one's width are one digit
MERGE_GAP = 0.5  # ...unless they are further apart vertically than this share of the digit height
PART_HEIGHT = 0.5  # pieces less tall than this share of the tallest are parts of a digit (bars, flags)...
ATTACH_DISTANCE = 0.5  # ...joined to the nearest digit within this share of its height
SMALL_PIECE = 0.25  # an unattached part smaller than this share of the height is a speck: dropped
SPLIT_ASPECT = 1.25  # a piece wider than this times its height may be several touching digits
CUT_REGION = 0.2  # cuts are looked for between this share of the width from either side
CUT_STROKES = 2.5  # a cut column holds at most this much ink, in stroke widths...
CUT_RUNS = 2  # ...in at most this many separate runs (one where the digits touch, one passing by)
# Candidate cuts for the model to try (preprocessing's recognition-based cuts, prepare(image, read=...)).
MAX_CUTS = 8  # candidate cut columns kept per piece (the thinnest)
CROSSING_STROKES = 6  # where two digits' strokes overlap, a column is one run of up to this many stroke widths
# Digits whose inked boxes overlap meet no straight column: a cut path from top to bottom may step
# sideways one pixel per row, within this many stroke widths of where it starts (enough to pass
# between overlapping digits, too little to walk round one), and crosses as little ink as it can.
PATH_BAND = 1.0
PATH_ROWS = 64  # paths are searched on the piece scaled to this height: a few ms, and the cuts land alike
PATH_STROKES = 6.0  # at most what a crossing column may hold (CROSSING_STROKES): one place where digits meet
# Only pieces this wide are given paths: two digits whose boxes overlap are, most single digits are not.
# (On UNIPEN validation writers' touching numbers, seeds 7-9: 80.0 / 85.5 / 81.0% read, against
# 79.5 / 85.5 / 82.0% with paths for every piece tried, at a fraction of the time for single digits.)
PATH_ASPECT = 1.2
PATH_MIN_HEIGHT = 4  # stroke widths: a lower piece is a dash or a bar (a digit is 5 or more)
PATH_SPACING = 0.5  # stroke widths between a new path and every candidate before it, on average
MAX_CUT_PATHS = 10  # all the columns, then the cheapest paths elsewhere: at most 66 spans to read


@dataclass
class _Piece:
    """Connected ink pieces taken as one digit: a box (x1, y1 exclusive) and their labels."""

    x0: int
    y0: int
    x1: int
    y1: int
    labels: list

    @property
    def width(self):
        return self.x1 - self.x0

    @property
    def height(self):
        return self.y1 - self.y0

    def join(self, other):
        return _Piece(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
            self.labels + other.labels,
        )


def _find_pieces(mask):
    """The ink's connected pieces, specks removed, and a label image to tell them apart.

    The label image is None when there is a single piece: its mask is the ink mask.
    """
    height, width = mask.shape
    # Outer contours give the pieces' boxes; connectedComponentsWithStats takes
    # several times longer, and most drawings are one piece that needs no labels.
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outer = [contour for contour, links in zip(contours, hierarchy[0] if contours else ()) if links[3] < 0]
    labels = cv2.connectedComponents(mask, connectivity=8)[1] if len(outer) > 1 else None
    speck = SPECKLE_FRACTION * max(height, width)
    pieces = []
    for contour in outer:
        x, y, w, h = cv2.boundingRect(contour)
        if max(w, h) > speck:
            start_x, start_y = contour[0, 0]
            label = 1 if labels is None else int(labels[start_y, start_x])
            pieces.append(_Piece(x, y, x + w, y + h, [label]))
    if len(pieces) > MAX_PIECES:
        pieces = sorted(pieces, key=lambda piece: piece.width * piece.height)[-MAX_PIECES:]
    return labels, pieces


def _group_pieces(pieces):
    """Digits as groups of pieces: strokes of one digit (a 5's bar, a 1's flag) stay together."""
    if not pieces:
        return []
    digit_height = max(piece.height for piece in pieces)
    # Pieces stacked above each other (a 5's bar, a 4 drawn in several strokes) join first;
    # what is still short after that is part of a digit.
    groups = _merge_overlapping(pieces, digit_height)
    parts = [group for group in groups if group.height < PART_HEIGHT * digit_height]
    groups = [group for group in groups if group.height >= PART_HEIGHT * digit_height]
    while parts:
        part = parts.pop(0)  # left to right
        neighbours = groups + parts
        gaps = [_gap(part, neighbour) for neighbour in neighbours]
        if not gaps or min(gaps) > ATTACH_DISTANCE * digit_height:
            if max(part.width, part.height) >= SMALL_PIECE * digit_height:
                groups.append(part)  # a short mark on its own: the model will say how digit-like it is
            continue
        nearest = int(np.argmin(gaps))
        if nearest < len(groups):
            groups[nearest] = groups[nearest].join(part)
        else:  # two parts, such as the dashes of a broken 1, may make a digit together
            joined = parts.pop(nearest - len(groups)).join(part)
            if joined.height >= PART_HEIGHT * digit_height:
                groups.append(joined)
            else:
                parts.append(joined)
    return _merge_overlapping(groups, digit_height)


def group_boxes(boxes):
    """Indices of ink boxes (x0, y0, x1, y1) grouped into digits, left to right, as pieces of ink are.

    Strokes use it: each stroke's box is one piece. Boxes too small to be a digit
    or a part of one are left out.
    """
    pieces = [_Piece(x0, y0, x1, y1, [index]) for index, (x0, y0, x1, y1) in enumerate(boxes)]
    return [sorted(group.labels) for group in _group_pieces(pieces)]


def _merge_overlapping(groups, digit_height):
    """Join groups that overlap strongly in x: strokes of one digit drawn apart."""
    groups = sorted(groups, key=lambda group: group.x0)
    merged = True
    while merged:  # a joined group is wider and may now overlap another one
        merged = False
        for index, first in enumerate(groups):
            for other_index in range(index + 1, len(groups)):
                other = groups[other_index]
                if other.x0 >= first.x1:  # sorted by x0: no later group overlaps either
                    break
                if _belong_together(first, other, digit_height):
                    groups[index] = first.join(other)
                    del groups[other_index]
                    merged = True
                    break
            if merged:
                break
    return groups


def _belong_together(first, second, digit_height):
    """Whether two groups overlap in x by most of the narrower one and are vertically close."""
    overlap = min(first.x1, second.x1) - max(first.x0, second.x0)
    vertical_gap = max(first.y0, second.y0) - min(first.y1, second.y1)
    narrower = min(first.width, second.width)
    return overlap > MERGE_OVERLAP * narrower and vertical_gap <= MERGE_GAP * digit_height


def _gap(first, second):
    """The distance between two boxes (0 when they overlap)."""
    dx = max(first.x0 - second.x1, second.x0 - first.x1, 0)
    dy = max(first.y0 - second.y1, second.y0 - first.y1, 0)
    return math.hypot(dx, dy)


def _piece_mask(mask, labels, piece):
    """A 0/1 uint8 mask of the piece's own ink inside its box."""
    if labels is None:
        return mask[piece.y0 : piece.y1, piece.x0 : piece.x1]
    crop = labels[piece.y0 : piece.y1, piece.x0 : piece.x1]
    inside = crop == piece.labels[0] if len(piece.labels) == 1 else np.isin(crop, piece.labels)
    return inside.view(np.uint8)


def _split_wide(piece, mask, stroke_width=None):
    """A single piece cut into digits where touching digits meet, when it is too wide for one.

    Groups of several pieces are left whole: they were joined on purpose.
    """
    if len(piece.labels) > 1 or piece.width <= SPLIT_ASPECT * piece.height:
        return [(piece, mask)]
    if stroke_width is None:
        stroke_width = _mask_stroke_width(mask)
    # Touching digits meet in a single stroke: the column there holds about one stroke
    # width of ink, in one run (or two, with a stroke passing by), and passes through no
    # loop. A wide 0 has a loop, a wide 2 more ink or a tail too short to be a digit.
    column_ink, runs, thin = _column_profile(mask, stroke_width)
    can_cut = thin & ~_hole_columns(mask)
    low, high = round(CUT_REGION * piece.width), round((1 - CUT_REGION) * piece.width)
    candidates = low + np.flatnonzero(can_cut[low:high])
    if candidates.size == 0:
        return [(piece, mask)]
    # The best cut crosses the least ink in the fewest runs: inside a 0 a column crosses
    # two strokes, where two 0s touch it crosses one.
    cut = int(candidates[np.argmin(column_ink[candidates] * runs[candidates])])
    halves = []
    for start, end in ((0, cut), (cut, piece.width)):
        rows = np.flatnonzero(mask[:, start:end].any(axis=1))
        if rows.size == 0 or rows[-1] + 1 - rows[0] < PART_HEIGHT * piece.height:
            return [(piece, mask)]  # a tail or a flag, not a digit: the piece was one digit
        top, bottom = rows[0], rows[-1] + 1
        box = _Piece(piece.x0 + start, piece.y0 + top, piece.x0 + end, piece.y0 + bottom, piece.labels)
        halves.append((box, mask[top:bottom, start:end]))
    # Either half may still hold several digits.
    return [part for half, half_mask in halves for part in _split_wide(half, half_mask, stroke_width)]


def _mask_stroke_width(mask):
    """The mean stroke width of a 0/1 mask that may touch its edges."""
    return _stroke_width(cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0))[0]


def _stroke_width(strokes):
    """The mean stroke width, in pixels, of a 0/1 uint8 mask with a background margin.

    Also returns the distance transform (each ink pixel's distance to the background).
    """
    inside = cv2.distanceTransform(strokes, cv2.DIST_L2, cv2.DIST_MASK_5)
    # Across a stroke of width w the distance to the edge runs 1, 2, ..., w/2, ..., 2, 1:
    # its mean is about w/4 + 1/2.
    return 4 * (float(inside.sum()) / max(cv2.countNonZero(strokes), 1) - 0.5), inside


def _column_profile(mask, stroke_width):
    """Each column's ink, its number of separate runs, and whether it is thin enough to cut."""
    column_ink = mask.sum(axis=0)
    runs = mask[0] + np.count_nonzero(mask[1:] > mask[:-1], axis=0)
    return column_ink, runs, (column_ink <= CUT_STROKES * stroke_width) & (runs <= CUT_RUNS)


def _holes(mask):
    """The background pixels of a 0/1 mask enclosed by ink (a 0's or an 8's loops)."""
    background = cv2.copyMakeBorder(1 - mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    _, regions = cv2.connectedComponents(background, connectivity=4)
    holes = (regions != regions[0, 0]) & (background > 0)  # background not reached from outside
    return holes[1:-1, 1:-1]


def _hole_columns(mask):
    """Which columns of a 0/1 mask pass through a hole: a cut there would open a 0's loop."""
    return _holes(mask).any(axis=0)


def _candidate_cuts(mask, stroke_width, holes):
    """Columns where touching digits may meet: the thinnest column of each run of thin, loop-free columns.

    holes: the mask's _holes, which the caller needs too.
    """
    column_ink, runs, thin = _column_profile(mask, stroke_width)
    crossing = (column_ink <= CROSSING_STROKES * stroke_width) & (runs == 1)
    can_cut = (thin | crossing) & ~holes.any(axis=0)
    edge = max(1, round(stroke_width))
    can_cut[:edge] = can_cut[-edge:] = False
    cost = column_ink * runs
    cuts, start = [], None
    for column, allowed in enumerate(np.append(can_cut, False)):
        if allowed and start is None:
            start = column
        elif not allowed and start is not None:
            cuts.append(start + int(np.argmin(cost[start:column])))
            start = None
    cuts = sorted(cuts, key=lambda column: cost[column])[:MAX_CUTS]
    return sorted(cuts)


def _cut_paths(mask, stroke_width):
    """Top-to-bottom cut paths crossing the least ink, cheapest first: (ink crossed, path) pairs.

    A path starts at a column a stroke width or more from the mask's sides, keeps within
    PATH_BAND of it, steps sideways at most one pixel per row and never passes through a
    loop; the path is the cut's column in every row. One path per start column (many
    coincide). Searched on the mask scaled to PATH_ROWS high; the ink crossed is in the mask's pixels.
    """
    height, width = mask.shape
    scale = min(1.0, PATH_ROWS / height)
    small = mask
    if scale < 1.0:
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = (cv2.resize(mask.astype(np.float32), small_size, interpolation=cv2.INTER_AREA) > 0.25).view(np.uint8)
    rows, columns = small.shape
    band = max(1, round(PATH_BAND * stroke_width * scale))
    edge = max(1, round(stroke_width * scale))
    starts = np.arange(edge, columns - edge)
    if starts.size == 0:
        return []
    cost = small.astype(np.float64)
    cost[_holes(small)] = np.inf
    padded = np.pad(cost, ((0, 0), (band, band)), constant_values=np.inf)
    within = starts[:, None] + np.arange(2 * band + 1)  # each start's band, in padded columns
    total = padded[0][within]
    steps = np.zeros((rows, *total.shape), np.int8)  # -1, 0 or 1: where each row's best path came from
    from_left, from_right = np.full_like(total, np.inf), np.full_like(total, np.inf)
    for row in range(1, rows):
        from_left[:, 1:], from_right[:, :-1] = total[:, :-1], total[:, 1:]
        came = np.where(from_left < total, -1, 0).astype(np.int8)
        best = np.minimum(total, from_left)
        came[from_right < best] = 1
        steps[row] = came
        total = np.minimum(best, from_right) + padded[row][within]
    every_start = np.arange(starts.size)
    position = total.argmin(axis=1)
    crossed = total[every_start, position]
    paths = np.empty((rows, starts.size), np.int64)  # positions within each start's band, traced back
    paths[-1] = position
    for row in range(rows - 1, 0, -1):
        paths[row - 1] = paths[row] + steps[row, every_start, paths[row]]
    small_paths = starts - band + paths  # columns of the small mask
    full_rows = np.minimum((np.arange(height) * scale).astype(np.int64), rows - 1)
    full_paths = np.clip(np.round(small_paths[full_rows] / scale).astype(np.int64), 0, width)
    return [
        (float(crossed[index]) / scale, full_paths[:, index])
        for index in np.argsort(crossed, kind="stable")
        if np.isfinite(crossed[index])
    ]


def candidate_cut_paths(mask, stroke_width):
    """Where touching digits may meet, left to right: (path, whether it is a straight column) pairs.

    A path is the cut's column in every row of the mask. The candidate columns
    (_candidate_cuts) first, then the cheapest cut paths crossing at most PATH_STROKES
    stroke widths of ink, each half a stroke width or more from those before it on
    average. Paths are made not to cross (each lies nowhere left of the one before),
    and none passes through a loop.
    """
    height, width = mask.shape
    holes = _holes(mask)
    chosen = [(np.full(height, column, np.int64), True) for column in _candidate_cuts(mask, stroke_width, holes)]
    overlapping_digits = width >= PATH_ASPECT * height and height >= PATH_MIN_HEIGHT * stroke_width
    paths = _cut_paths(mask, stroke_width) if overlapping_digits else []
    for crossed, path in paths:
        if len(chosen) >= MAX_CUT_PATHS or crossed > PATH_STROKES * stroke_width:
            break
        if all(np.abs(path - other).mean() > PATH_SPACING * stroke_width for other, _ in chosen):
            chosen.append((path, False))
    chosen.sort(key=lambda item: item[0].mean())
    for index in range(1, len(chosen)):
        chosen[index] = (np.maximum(chosen[index][0], chosen[index - 1][0]), chosen[index][1])
    if all(straight for _, straight in chosen):
        return chosen  # columns alone, none through a loop
    # The search ran on a smaller mask, where a loop may be narrower than it is here.
    rows = np.arange(height)
    return [(path, straight) for path, straight in chosen if not holes[rows, np.minimum(path, width - 1)].any()]


def best_partition(count, confidences, boundary_cost):
    """The split of units 0..count-1 into consecutive spans whose reading is most probable.

    confidences: {(start, end): the model's top probability for units start..end-1
    read as one digit}; spans not in it cannot be a digit. boundary_cost(position,
    cut): the log cost of cutting (or not) between units position - 1 and position.
    Returns the chosen spans, left to right, and the margin: how much less likely
    (as a log ratio) the best reading with another number of digits is (inf when none).
    """
    # best[end][digits]: (log score of units 0..end-1 read as that many digits, where the last span starts)
    best = [{} for _ in range(count + 1)]
    best[0][0] = (0.0, None)
    for end in range(1, count + 1):
        for start in range(end):
            if (start, end) not in confidences:
                continue
            gain = math.log(max(confidences[start, end], 1e-9))
            gain += sum(boundary_cost(position, False) for position in range(start + 1, end))
            gain += boundary_cost(start, True) if start else 0.0
            for digits, (score, _) in best[start].items():
                if score + gain > best[end].get(digits + 1, (-math.inf, None))[0]:
                    best[end][digits + 1] = (score + gain, start)
    final = best[count]
    if not final:
        return [(0, count)], 0.0
    digits = max(final, key=lambda number: final[number][0])
    others = [score for number, (score, _) in final.items() if number != digits]
    margin = final[digits][0] - max(others) if others else math.inf
    chosen, end = [], count
    while end > 0:
        start = best[end][digits][1]
        chosen.append((start, end))
        end, digits = start, digits - 1
    return chosen[::-1], margin
