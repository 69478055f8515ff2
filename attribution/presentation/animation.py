"""An explained episode as a moving picture for slides: at each step the environment's frame and
that step's attribution bars side by side, as an animated GIF or an MP4.

The bars are drawn with Pillow (no browser, no Plotly image export), in the app's colours.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from attribution.presentation.plots import PUSHES_DOWN, PUSHES_UP

MAX_FRAMES = 400  # longer episodes show every k-th step, so files stay small enough for slides
PANEL_WIDTH = 480


def storyboard(frames, attributions, feature_names, titles, max_frames: int = MAX_FRAMES,
               painted=None) -> list[np.ndarray]:
    """uint8 (H, W + PANEL_WIDTH, 3) images: frame t beside the bars of attributions[t].

    Args:
        frames: a sequence of T RGB frames, uint8 (H, W, 3) (``episodes.Frames`` decodes on access).
        attributions: (T, F), one bar per feature (or per object).
        feature_names: (F,) strings.
        titles: (T,) a line above each step's bars ("step 12 · push left · why P(push left)").
        painted: for a pixel agent, ``painted(steps) -> frames`` with its attribution over each of those
            steps' screens, called once with the steps shown.
    """
    attributions = np.asarray(attributions, dtype=float).reshape(len(attributions), -1)
    if len(frames) != len(attributions):
        raise ValueError(f"need one frame per step; received {len(frames)} frames for {len(attributions)} steps.")
    stride = max(1, -(-len(frames) // max_frames))
    steps = list(range(0, len(frames), stride))
    shown = painted(steps) if painted else [frames[t] for t in steps]
    scale = float(np.abs(attributions).max()) or 1.0  # one scale for the whole episode, so bars compare over time
    font = ImageFont.load_default(size=14)
    images = []
    for t, picture in zip(steps, shown, strict=True):
        frame = Image.fromarray(np.asarray(picture, dtype=np.uint8))
        panel = _bars_panel(attributions[t], feature_names, titles[t], scale, frame.height, font)
        canvas = Image.new("RGB", (frame.width + PANEL_WIDTH, frame.height), "white")
        canvas.paste(frame, (0, 0))
        canvas.paste(panel, (frame.width, 0))
        images.append(np.asarray(canvas))
    return images


def _bars_panel(values, names, title: str, scale: float, height: int, font) -> Image.Image:
    panel = Image.new("RGB", (PANEL_WIDTH, height), "white")
    draw = ImageDraw.Draw(panel)
    draw.text((10, 8), title, fill="#222", font=font)
    values = np.asarray(values, dtype=float) + 0.0  # no "-0" labels
    order = np.argsort(-np.abs(values))
    row = min(34, (height - 40) // max(1, len(values)))
    label_width, value_width = 180, 60  # name | bars around a centre line | value
    half = (PANEL_WIDTH - label_width - value_width) // 2 - 6
    centre = label_width + half + 6
    draw.line([(centre, 34), (centre, 34 + row * len(values))], fill="#888")
    for k, i in enumerate(order):
        y = 36 + k * row
        draw.text((10, y + row // 4), str(names[i])[:26], fill="#333", font=font)
        length = int(round(half * values[i] / scale))
        box = (
            (centre, y + 4, centre + length, y + row - 4)
            if length >= 0
            else (centre + length, y + 4, centre, y + row - 4)
        )
        draw.rectangle(box, fill=PUSHES_UP if values[i] >= 0 else PUSHES_DOWN)
        draw.text((PANEL_WIDTH - value_width + 4, y + row // 4), f"{values[i]:+.2g}", fill="#333", font=font)
    return panel


def to_gif(images, fps: float = 10) -> bytes:
    """An animated GIF that loops."""
    pictures = [Image.fromarray(image).quantize(colors=64, method=Image.Quantize.FASTOCTREE) for image in images]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=int(1000 / fps), loop=0)
    return buffer.getvalue()


def to_mp4(images, fps: float = 10) -> bytes:
    """An H.264 MP4 (yuv420p, even sizes: what slide software plays)."""
    import av

    height, width = (d - d % 2 for d in images[0].shape[:2])
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in images:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24"))
            )
        container.mux(stream.encode())
    return buffer.getvalue()
