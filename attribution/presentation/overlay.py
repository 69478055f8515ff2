"""Attributions painted on the picture: a pixel agent's map over its colour screen, its objects
outlined, and one small panel per stacked frame (whether the agent uses motion).

The colour scale is clipped at a percentile of |attribution| for display only; the numbers the
bars, sentences and exports show are never clipped.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from attribution.presentation.plots import PUSHES_DOWN, PUSHES_UP

POSITIVE = np.array(ImageColor.getrgb(PUSHES_UP), np.float32)    # pushed the explained output up: the bars' blue
NEGATIVE = np.array(ImageColor.getrgb(PUSHES_DOWN), np.float32)  # pushed it down: their red
MAGNITUDE = np.array([255, 220, 0], np.float32)
OUTLINE = (255, 255, 255)
MAX_OPACITY = 0.85


def display_scale(attributions, percentile: float = 99.0) -> float:
    """The |attribution| that gets full colour: the ``percentile`` of the nonzero magnitudes (> 0)."""
    magnitudes = np.abs(np.asarray(attributions, np.float64)).ravel()
    magnitudes = magnitudes[magnitudes > 0]
    return float(np.percentile(magnitudes, percentile)) if magnitudes.size else 1.0


def paint(picture: np.ndarray, attribution: np.ndarray, scale: float, magnitude: bool = False) -> np.ndarray:
    """``picture`` uint8 (H, W, 3) with ``attribution`` (h, w) laid over it, stretched to (H, W):
    blue where it pushed the output up and red where it pushed down, as the bars (or yellow for |attribution|),
    more opaque the larger it is, transparent at zero."""
    height, width = picture.shape[:2]
    stretched = np.asarray(Image.fromarray(np.asarray(attribution, np.float32), mode="F").resize(
        (width, height), Image.Resampling.NEAREST))
    strength = np.clip(np.abs(stretched) / scale, 0, 1)[..., None] * MAX_OPACITY
    colour = MAGNITUDE if magnitude else np.where(stretched[..., None] >= 0, POSITIVE, NEGATIVE)
    return (picture * (1 - strength) + colour * strength).astype(np.uint8)


def outline(picture: np.ndarray, masks: dict[str, np.ndarray], labels: dict[str, str] | None = None) -> np.ndarray:
    """``picture`` with a box around each non-empty mask (h, w), stretched to the picture, and its label."""
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    height, width = picture.shape[:2]
    for name, mask in masks.items():
        rows, columns = np.nonzero(mask)
        if not len(rows):
            continue
        sy, sx = height / mask.shape[0], width / mask.shape[1]
        box = (columns.min() * sx - 1, rows.min() * sy - 1, (columns.max() + 1) * sx, (rows.max() + 1) * sy)
        draw.rectangle(box, outline=OUTLINE, width=1)
        text = (labels or {}).get(name, name)
        draw.text((max(0, min(box[0], width - 6 * len(text))), max(0, box[1] - 11)), text, fill=OUTLINE)
    return np.asarray(image)


def painted_screen(screen: np.ndarray, attribution: np.ndarray, masks: dict[str, np.ndarray], scale: float,
                   magnitude: bool = False, zoom: int = 2) -> np.ndarray:
    """The screen (H, W, 3) enlarged ``zoom`` times (each pixel a block, so the picture stays sharp),
    with ``attribution`` (h, w) painted over it and a labelled box around each of ``masks``."""
    enlarged = np.repeat(np.repeat(np.asarray(screen, np.uint8), zoom, axis=0), zoom, axis=1)
    return outline(paint(enlarged, attribution, scale, magnitude), masks)


def tinted_boxes(picture: np.ndarray, boxes: dict[str, tuple], values: dict[str, float], scale: float) -> np.ndarray:
    """``picture`` (H, W, 3) with each box (x0, y0, x1, y1, in pixels) filled with the bars' colour for its
    part's attribution (blue pushed the output up, red down; more opaque the larger), outlined, and
    numbered by rank of |attribution| (1: the part that mattered most)."""
    image = Image.fromarray(np.asarray(picture, np.uint8)).convert("RGBA")
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    ranked = sorted(boxes, key=lambda name: -abs(values[name]))
    for rank, name in enumerate(ranked, start=1):
        value = values[name]
        colour = POSITIVE if value >= 0 else NEGATIVE
        opacity = int(255 * MAX_OPACITY * min(abs(value) / scale, 1.0)) if scale > 0 else 0
        box = boxes[name]
        draw.rectangle(box, fill=(*colour.astype(int), opacity), outline=(0, 0, 0, 255), width=2)
        draw.text((box[0] + 2, box[1] - 11), str(rank), fill=(255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(image, layer).convert("RGB"))


def frame_panels(frames: np.ndarray, attributions: np.ndarray, titles, scale: float, zoom: int = 2) -> np.ndarray:
    """One panel per stacked frame, side by side: the grayscale frame with its attribution over it,
    uint8 (zoom * (h + 12), frames * zoom * w + gaps, 3)."""
    panels = []
    for frame, attribution, title in zip(frames, attributions, titles, strict=True):
        gray = np.repeat(np.asarray(frame, np.uint8)[..., None], 3, axis=-1)
        painted = paint(np.asarray(Image.fromarray(gray).resize((gray.shape[1] * zoom, gray.shape[0] * zoom),
                                                                 Image.Resampling.NEAREST)), attribution, scale)
        canvas = Image.new("RGB", (painted.shape[1], painted.shape[0] + 14), (255, 255, 255))
        canvas.paste(Image.fromarray(painted), (0, 14))
        ImageDraw.Draw(canvas).text((2, 1), title, fill=(0, 0, 0))
        panels.append(np.asarray(canvas))
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    return np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1)


def png_data_url(picture: np.ndarray) -> str:
    """A uint8 (H, W, 3) picture as a PNG data URL, compressed lightly (the Live page sends one per step)."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
