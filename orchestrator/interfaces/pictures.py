"""Pictures of a title, drawn from its values with Pillow: a contact sheet of its shots, its cut timeline, and
the feature graph of an asset (PNG, or SVG text). ``mediamesh show`` writes them; the shot browser reuses them.

Every function here takes values and returns an image (or SVG text): none reads the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape

from PIL import Image, ImageDraw, ImageFont

from mediamesh.features.registry import Registry
from mediamesh.features.spec import ROOT_INPUTS
from mediamesh.features.values import DedupMap, ShotTable, ShotThumbnails

__all__ = [
    "STATE_COLOURS",
    "TIMELINE_MARGIN",
    "TIMELINE_STRIP",
    "FeatureGraph",
    "GraphNode",
    "contact_sheet",
    "feature_graph",
    "graph_png",
    "graph_svg",
    "mean_colours",
    "tile_images",
    "timeline",
    "timeline_x",
]

RGB = tuple[int, int, int]

#: A node's fill by state; ``input`` is a root input (the asset's bytes, subtitles, title metadata, checkpoint).
STATE_COLOURS: Mapping[str, str] = {
    "stored": "#2e9e5b",
    "failed": "#d64545",
    "missing": "#9aa0a6",
    "running": "#e0a526",
    "waiting": "#3aa3c2",
    "input": "#5b6b8c",
}
#: The timeline's strip: this many pixels of margin left and right, the strip's top and its height.
TIMELINE_MARGIN = 12
TIMELINE_STRIP = (28, 56)
_BACKGROUND = (24, 24, 28)
_TEXT = (235, 235, 235)
_DIM = (150, 150, 160)
_CAPTION_PX = 18


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def tile_images(thumbs: ShotThumbnails, sheet: Image.Image | None = None) -> list[Image.Image]:
    """Each shot's tile, in shot order (a duplicate's is its representative's), cut from the sprite sheet."""
    if sheet is None:
        with Image.open(thumbs.path) as opened:
            sheet = opened.convert("RGB")
    cut: dict[int, Image.Image] = {}
    for shot, tile in enumerate(thumbs.tiles):
        if tile not in cut:
            cut[tile] = sheet.crop(thumbs.box(shot))
    return [cut[tile] for tile in thumbs.tiles]


def mean_colours(tiles: Sequence[Image.Image]) -> list[RGB]:
    """Each tile's mean colour."""
    colours: list[RGB] = []
    for tile in tiles:
        r, g, b = tile.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
        colours.append((int(r), int(g), int(b)))
    return colours


def contact_sheet(
    thumbs: ShotThumbnails, shots: ShotTable, *, columns: int = 6, tiles: Sequence[Image.Image] | None = None
) -> Image.Image:
    """A grid of the shots' thumbnails, ``columns`` wide, each captioned with its index and start time (and the
    shot it repeats, for a duplicate)."""
    tiles = tiles if tiles is not None else tile_images(thumbs)
    count = len(shots)
    columns = max(1, min(columns, count))
    rows = max(1, -(-count // columns))
    gap = 4
    cell_w, cell_h = thumbs.tile_width, thumbs.tile_height + _CAPTION_PX
    sheet = Image.new("RGB", (gap + columns * (cell_w + gap), gap + rows * (cell_h + gap)), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    first = _first_showing(thumbs)
    for shot in shots.shots:
        left = gap + (shot.index % columns) * (cell_w + gap)
        top = gap + (shot.index // columns) * (cell_h + gap)
        sheet.paste(tiles[shot.index], (left, top))
        caption = f"#{shot.index}  {_clock(shot.start_time)}"
        repeats = first[thumbs.tiles[shot.index]]
        if repeats != shot.index:
            caption += f"  = #{repeats}"
        draw.text((left + 2, top + thumbs.tile_height + 3), caption, fill=_TEXT, font=_font(11))
    return sheet


def timeline_x(seconds: float, duration: float, width: int) -> int:
    """The pixel column of time ``seconds`` on a timeline ``width`` pixels wide of a title ``duration`` long."""
    inner = width - 2 * TIMELINE_MARGIN
    return TIMELINE_MARGIN + round(inner * min(max(seconds / duration, 0.0), 1.0)) if duration > 0 else TIMELINE_MARGIN


def timeline(
    thumbs: ShotThumbnails,
    shots: ShotTable,
    dedup: DedupMap | None = None,
    *,
    width: int = 1200,
    tiles: Sequence[Image.Image] | None = None,
) -> Image.Image:
    """The title as a strip: one block per shot, as wide as the shot is long, in the mean colour of its thumbnail;
    a duplicate's block hatched in its lower half; each cut's time written under it where there is room."""
    colours = mean_colours(tiles if tiles is not None else tile_images(thumbs))
    duration = shots.shots[-1].end_time if shots.shots else 0.0
    top, strip = TIMELINE_STRIP
    image = Image.new("RGB", (width, top + strip + 34), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((TIMELINE_MARGIN, 6), f"{len(shots)} shots, {_clock(duration)}", fill=_TEXT, font=_font(13))
    representative = dedup.representative if dedup is not None else tuple(range(len(shots)))
    label_end = -1
    for shot in shots.shots:
        left, right = timeline_x(shot.start_time, duration, width), timeline_x(shot.end_time, duration, width)
        if right > left:
            draw.rectangle((left, top, right - 1, top + strip - 1), fill=colours[shot.index])
        if representative[shot.index] != shot.index:
            _hatch(draw, left, right, top + strip // 2, top + strip, _contrast(colours[shot.index]))
        if shot.index == 0:
            continue
        draw.line((left, top + strip, left, top + strip + 5), fill=_DIM)
        label = f"{shot.start_time:.2f}"
        text_w = draw.textlength(label, font=_font(10))
        at = max(0.0, min(left - text_w / 2, width - text_w))
        if at > label_end + 4:
            draw.text((at, top + strip + 8), label, fill=_TEXT, font=_font(10))
            label_end = int(at + text_w)
    return image


@dataclass(frozen=True)
class GraphNode:
    """One node of an asset's feature graph: a feature (``name@version``) or a root input, and its state."""

    name: str
    label: str
    state: str
    layer: int
    row: int


@dataclass(frozen=True)
class FeatureGraph:
    """The nodes, laid out in layers by dependency depth (root inputs first), and the edges input -> feature."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[tuple[str, str], ...]


def feature_graph(
    registry: Registry, states: Mapping[str, str], versions: Mapping[str, str] | None = None
) -> FeatureGraph:
    """The registry's features and the root inputs they read, each with its state from ``states`` (feature ->
    stored, failed, missing, running, waiting; a feature absent from it is missing)."""
    depth: dict[str, int] = {}
    edges: list[tuple[str, str]] = []
    used_roots: list[str] = []
    for name in registry:
        spec = registry[name]
        for upstream in spec.input_names:
            edges.append((upstream, name))
            if upstream in ROOT_INPUTS and upstream not in used_roots:
                used_roots.append(upstream)
        depth[name] = 1 + max((depth.get(i, 0) for i in spec.input_names), default=0)
    rows: dict[int, int] = {}
    nodes: list[GraphNode] = []
    for root in sorted(used_roots, key=list(ROOT_INPUTS).index):
        nodes.append(GraphNode(root, root, "input", 0, rows.setdefault(0, 0)))
        rows[0] += 1
    for name in registry:
        layer = depth[name]
        version = (versions or {}).get(name, registry[name].version)
        nodes.append(GraphNode(name, f"{name}@{version}", states.get(name, "missing"), layer, rows.get(layer, 0)))
        rows[layer] = rows.get(layer, 0) + 1
    return FeatureGraph(tuple(nodes), tuple(edges))


_NODE_W, _NODE_H, _GAP_X, _GAP_Y, _PAD = 170, 30, 60, 14, 16


def _node_box(node: GraphNode) -> tuple[int, int, int, int]:
    left = _PAD + node.layer * (_NODE_W + _GAP_X)
    top = _PAD + 22 + node.row * (_NODE_H + _GAP_Y)
    return left, top, left + _NODE_W, top + _NODE_H


def _graph_size(graph: FeatureGraph) -> tuple[int, int]:
    layers = 1 + max((n.layer for n in graph.nodes), default=0)
    rows = 1 + max((n.row for n in graph.nodes), default=0)
    return 2 * _PAD + layers * (_NODE_W + _GAP_X) - _GAP_X, 2 * _PAD + 22 + rows * (_NODE_H + _GAP_Y) + 20


def graph_png(graph: FeatureGraph, title: str = "") -> Image.Image:
    """The graph drawn: boxes coloured by state, edges from each input's right side to its reader's left."""
    size = _graph_size(graph)
    image = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(image)
    boxes = {n.name: _node_box(n) for n in graph.nodes}
    for upstream, name in graph.edges:
        a, b = boxes[upstream], boxes[name]
        draw.line((a[2], (a[1] + a[3]) // 2, b[0], (b[1] + b[3]) // 2), fill=(120, 120, 130), width=1)
        draw.ellipse((b[0] - 3, (b[1] + b[3]) // 2 - 3, b[0] + 3, (b[1] + b[3]) // 2 + 3), fill=(120, 120, 130))
    for node in graph.nodes:
        box = boxes[node.name]
        draw.rounded_rectangle(box, radius=6, fill=STATE_COLOURS.get(node.state, "#9aa0a6"), outline=(40, 40, 40))
        draw.text((box[0] + 8, box[1] + 8), node.label, fill=(255, 255, 255), font=_font(12))
    draw.text((_PAD, 8), title, fill=(30, 30, 30), font=_font(13))
    _legend(draw, size[1] - 22, (state for state in STATE_COLOURS if state != "waiting" or _has(graph, state)))
    return image


def graph_svg(graph: FeatureGraph, title: str = "") -> str:
    """The same drawing as :func:`graph_png`, as SVG text."""
    width, height = _graph_size(graph)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#fafafa"/>',
        f'<text x="{_PAD}" y="20" font-size="13" fill="#1e1e1e">{escape(title)}</text>',
    ]
    boxes = {n.name: _node_box(n) for n in graph.nodes}
    for upstream, name in graph.edges:
        a, b = boxes[upstream], boxes[name]
        parts.append(
            f'<line x1="{a[2]}" y1="{(a[1] + a[3]) // 2}" x2="{b[0]}" y2="{(b[1] + b[3]) // 2}" stroke="#787882"/>'
        )
    for node in graph.nodes:
        left, top, right, bottom = boxes[node.name]
        fill = STATE_COLOURS.get(node.state, "#9aa0a6")
        parts.append(
            f'<g class="node {escape(node.state)}" data-feature="{escape(node.name)}">'
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" rx="6" fill="{fill}" '
            f'stroke="#282828"/><text x="{left + 8}" y="{top + 19}" fill="#fff">{escape(node.label)}</text>'
            f"<title>{escape(node.label)}: {escape(node.state)}</title></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _legend(draw: ImageDraw.ImageDraw, y: int, states: Iterable[str]) -> None:
    x = _PAD
    for state in states:
        draw.rectangle((x, y + 2, x + 10, y + 12), fill=STATE_COLOURS[state])
        draw.text((x + 14, y), state, fill=(30, 30, 30), font=_font(11))
        x += 24 + int(draw.textlength(state, font=_font(11)))


def _has(graph: FeatureGraph, state: str) -> bool:
    return any(n.state == state for n in graph.nodes)


def _first_showing(thumbs: ShotThumbnails) -> dict[int, int]:
    """For each tile, the first shot that shows it (the representative of its duplicates)."""
    first: dict[int, int] = {}
    for shot, tile in enumerate(thumbs.tiles):
        first.setdefault(tile, shot)
    return first


def _hatch(draw: ImageDraw.ImageDraw, left: int, right: int, top: int, bottom: int, colour: RGB) -> None:
    for x in range(left - (bottom - top), right, 6):
        x0, x1 = max(x, left), min(x + (bottom - top), right - 1)
        if x1 > x0:
            draw.line((x0, bottom - 1 - (x0 - x), x1, bottom - 1 - (x1 - x)), fill=colour)


def _contrast(colour: RGB) -> RGB:
    light = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (20, 20, 20) if light > 128 else (235, 235, 235)


def _clock(seconds: float) -> str:
    """``m:ss.cc`` (``h:mm:ss`` past an hour)."""
    minutes, secs = divmod(max(seconds, 0.0), 60)
    if minutes >= 60:
        hours, minutes = divmod(int(minutes), 60)
        return f"{hours}:{minutes:02d}:{int(secs):02d}"
    return f"{int(minutes)}:{secs:05.2f}"
