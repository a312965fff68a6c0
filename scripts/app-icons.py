#!/usr/bin/env python3
"""Draw the phone app's icons into src/qrgate/web/app/icons/ (the output is committed).

One mark, drawn from one grid below: a QR-like square of three finder patterns and a few
data modules, white on the app's brand colour. It is written as icon.svg (the favicon, and
the manifest's icon for any size) and as PNGs (Pillow cannot draw SVG, so the PNGs are
drawn from the same grid, not converted):

    icon-192.png, icon-512.png   rounded square, for launchers that show the icon as it is
    icon-maskable-512.png        full bleed, the mark inside the central safe circle (80 % of
                                 the side), for launchers that cut their own shape

Run it after changing the grid or the colours: .venv/bin/python scripts/app-icons.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = Path(__file__).resolve().parent.parent / "src/qrgate/web/app/icons"
BRAND = "#1f4e79"  # --brand in app.css, theme_color in the manifest
MODULE = "#ffffff"
GRID = (
    "#####.#####",
    "#...#.#...#",
    "#.#.#.#.#.#",
    "#...#.#...#",
    "#####.#####",
    "...........",
    "#####.#.##.",
    "#...#..#..#",
    "#.#.#.##.#.",
    "#...#.#..##",
    "#####.##.#.",
)
SIDE = len(GRID)
# Around the mark, in modules: the rounded icon's padding.
MARGIN = 2
# Corner radius of the rounded icon, in modules of its (SIDE + 2 * MARGIN) side.
RADIUS = 3
# The maskable icon's mark spans this share of the side: its corners stay inside the safe
# circle of diameter 0.8 (0.5 * sqrt(2) = 0.71 < 0.8).
MASKABLE_SHARE = 0.5
# PNGs are drawn this much larger and scaled down, for smooth edges.
SUPERSAMPLE = 4


def dark_modules() -> list[tuple[int, int]]:
    return [(x, y) for y, row in enumerate(GRID) for x, cell in enumerate(row) if cell == "#"]


def svg() -> str:
    full = SIDE + 2 * MARGIN
    runs = []  # one rectangle per horizontal run of modules
    for y, row in enumerate(GRID):
        x = 0
        while x < SIDE:
            if row[x] == "#":
                width = len(row[x:]) - len(row[x:].lstrip("#"))
                runs.append(f"M{x + MARGIN} {y + MARGIN}h{width}v1h-{width}z")
                x += width
            else:
                x += 1
    # crispEdges on the modules only: the rounded corners stay smooth.
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 '
            f'{full} {full}"><rect width="{full}" height="{full}" rx="{RADIUS}" '
            f'fill="{BRAND}"/><path fill="{MODULE}" shape-rendering="crispEdges" '
            f'd="{"".join(runs)}"/></svg>\n')


def png(size: int, *, maskable: bool) -> Image.Image:
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        unit = big * MASKABLE_SHARE / SIDE
        draw.rectangle((0, 0, big, big), fill=BRAND)
    else:
        unit = big / (SIDE + 2 * MARGIN)
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=RADIUS * unit, fill=BRAND)
    offset = (big - SIDE * unit) / 2
    for x, y in dark_modules():
        left, top = offset + x * unit, offset + y * unit
        draw.rectangle((round(left), round(top), round(left + unit) - 1, round(top + unit) - 1),
                       fill=MODULE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    (ICONS / "icon.svg").write_text(svg(), encoding="utf-8")
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("icon-maskable-512.png", 512, True)):
        png(size, maskable=maskable).save(ICONS / name, format="PNG", optimize=True)
        print(ICONS / name)


if __name__ == "__main__":
    main()
