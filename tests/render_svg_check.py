#!/usr/bin/python3
"""Renders an SVG chart with headless Chromium and checks the picture is really there.

usage: render_svg_check.py CHART.svg [--keep OUT.png] [--size 700x500] [--chromium PATH]

Checks: the SVG parses as XML and declares the expected size (--size, if given); its layout, in
the SVG's own coordinates (layout_problems: no data point or reference line within
EDGE_CLEARANCE px of the frame's top or bottom, and the legend box crossing no series line, marker
or reference line); Chromium, with its window set to that size, renders a screenshot of that size
that is not blank and holds pixels of the first two default palette colours (#1f77b4, #ff7f0e).
Exit 0 = pass, 1 = fail, 2 = could not run (bad arguments, Chromium missing or crashed).
Standard library + numpy only; layout_problems is used by the report tests too.
"""
import argparse
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

import numpy as np

SERIES_COLOURS = {"#1f77b4": (0x1F, 0x77, 0xB4), "#ff7f0e": (0xFF, 0x7F, 0x0E)}
TOLERANCE = 12  # per channel; anti-aliasing blends edges, but line cores keep the exact colour
MIN_COLOUR_PIXELS = 50  # a 2 px line across a few hundred px gives thousands
MIN_INK_FRACTION = 0.01  # text, frame and lines cover well over 1 % of a chart


EDGE_CLEARANCE = 20  # px; the chart keeps its data 30 px from the top and bottom of the frame


def _tag(el):
    return el.tag.rsplit("}", 1)[-1]


def _num(el, key):
    return float(el.attrib[key])


def layout_problems(svg, clearance=EDGE_CLEARANCE):
    """Problems of a line chart written by src/plot/svg_chart.cpp, in the SVG's own coordinates:
    data on the frame's top or bottom edge, a legend over data. `svg` is the document's text or
    root element; a picture without a chart frame (a heatmap, bars) has none. Returns messages."""
    root = ET.fromstring(svg) if isinstance(svg, str) else svg
    frame = next((el for el in root.iter() if _tag(el) == "rect" and el.get("class") == "frame"), None)
    if frame is None:
        return []
    top, bottom = _num(frame, "y"), _num(frame, "y") + _num(frame, "height")
    lines, points = [], []  # lines: (what, [(x, y), ...]); points: (what, x, y, half-size)
    data = next(el for el in root.iter() if _tag(el) == "g" and el.get("class") == "data")
    for i, el in enumerate(e for e in data if e.get("class") == "series"):
        pts = [tuple(map(float, p.split(","))) for p in el.get("points").split()]
        lines.append((f"series line #{i} ({el.get('stroke')})", pts))
    for el in data:
        if el.get("class") == "hline":
            lines.append((f"reference line ({el.get('stroke')})",
                          [(_num(el, "x1"), _num(el, "y1")), (_num(el, "x2"), _num(el, "y2"))]))
        elif el.get("class") == "marker":
            if _tag(el) == "circle":
                points.append(("marker", _num(el, "cx"), _num(el, "cy"), _num(el, "r")))
            else:
                h = _num(el, "width") / 2
                points.append(("marker", _num(el, "x") + h, _num(el, "y") + h, h))
    errors = []
    for what, pts in lines:
        for x, y in pts:
            if y < top + clearance or y > bottom - clearance:
                edge, d = ("top", y - top) if y - top < bottom - y else ("bottom", bottom - y)
                errors.append(f"{what} at ({x:.1f}, {y:.1f}) is {d:.1f} px from the frame's {edge} (want >= {clearance})")
                break
    legend = next((el for el in root.iter() if _tag(el) == "g" and el.get("class") == "legend"), None)
    if legend is not None:
        box = next(el for el in legend if _tag(el) == "rect")
        x0, y0 = _num(box, "x"), _num(box, "y")
        x1, y1 = x0 + _num(box, "width"), y0 + _num(box, "height")
        inside = lambda x, y, r=0.0: x0 - r <= x <= x1 + r and y0 - r <= y <= y1 + r
        for what, pts in lines:
            for (ax, ay), (bx, by) in zip(pts, pts[1:]):
                n = 1 + int(max(abs(bx - ax), abs(by - ay)))  # a sample per pixel along the segment
                hit = next(((ax + (bx - ax) * k / n, ay + (by - ay) * k / n) for k in range(n + 1)
                            if inside(ax + (bx - ax) * k / n, ay + (by - ay) * k / n)), None)
                if hit:
                    errors.append(f"the legend box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}) covers {what} at "
                                  f"({hit[0]:.1f}, {hit[1]:.1f})")
                    break
        for what, x, y, r in points:
            if inside(x, y, r):
                errors.append(f"the legend box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}) covers a {what} at ({x:.1f}, {y:.1f})")
                break
    return errors


def decode_png(data):
    """8-bit RGB/RGBA/grey, non-interlaced PNG -> uint8 array [H, W, C]."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG: depth={depth} colour_type={colour_type} interlace={interlace}")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], np.frombuffer(raw[start + 1:start + 1 + stride], dtype=np.uint8).astype(np.int32)
        if ftype == 0:  # None
            cur = line
        elif ftype == 2:  # Up
            cur = (line + prev) & 0xFF
        elif ftype in (1, 3, 4):  # Sub, Average, Paeth depend on the left pixel: go sequentially
            cur = np.zeros(stride, dtype=np.int32)
            for i in range(stride):
                a = cur[i - channels] if i >= channels else 0
                b, c = prev[i], (prev[i - channels] if i >= channels else 0)
                if ftype == 1:
                    pred = a
                elif ftype == 3:
                    pred = (a + b) >> 1
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + pred) & 0xFF
        else:
            raise ValueError(f"bad PNG filter type {ftype} in row {y}")
        out[y], prev = cur, cur
    return out.reshape(height, width, channels)


def screenshot(chromium, svg_path, width, height, png_path):
    profile = tempfile.mkdtemp(prefix="svgcheck-profile-")
    try:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png_path}", pathlib.Path(svg_path).resolve().as_uri()]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0 or not os.path.exists(png_path):
            raise RuntimeError(f"chromium failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def check(pixels, width, height):
    """Returns a list of failure messages (empty = pass)."""
    errors = []
    if pixels.shape[0] != height or pixels.shape[1] != width:
        errors.append(f"screenshot is {pixels.shape[1]}x{pixels.shape[0]}, expected {width}x{height}")
    rgb = pixels[:, :, :3].astype(np.int32) if pixels.shape[2] >= 3 else np.repeat(pixels[:, :, :1], 3, 2).astype(np.int32)
    ink = np.any(rgb < 240, axis=2).mean()
    if ink < MIN_INK_FRACTION:
        errors.append(f"picture looks blank: only {ink:.2%} non-white pixels (need {MIN_INK_FRACTION:.0%})")
    for name, colour in SERIES_COLOURS.items():
        near = np.all(np.abs(rgb - np.array(colour)) <= TOLERANCE, axis=2).sum()
        if near < MIN_COLOUR_PIXELS:
            errors.append(f"only {near} pixels of series colour {name} (need {MIN_COLOUR_PIXELS})")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("svg")
    ap.add_argument("--keep", metavar="OUT.png", help="keep the screenshot here")
    ap.add_argument("--size", help="expected WIDTHxHEIGHT of the SVG (default: whatever it declares)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    try:
        root = ET.parse(args.svg).getroot()
    except (ET.ParseError, OSError) as e:
        print(f"render_svg_check: FAIL: {args.svg} is not well-formed XML: {e}", file=sys.stderr)
        return 1
    try:  # the chart declares its pixel size; the screenshot window is set to it
        width, height = int(float(root.attrib["width"])), int(float(root.attrib["height"]))
    except (KeyError, ValueError):
        print(f"render_svg_check: FAIL: {args.svg} has no numeric width/height on <svg>", file=sys.stderr)
        return 1
    if args.size and args.size.lower() != f"{width}x{height}":
        print(f"render_svg_check: FAIL: {args.svg} declares {width}x{height}, expected {args.size}", file=sys.stderr)
        return 1
    layout = layout_problems(root)
    if not os.access(args.chromium, os.X_OK):
        print(f"render_svg_check: chromium not found at {args.chromium}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="svgcheck-") as tmp:
        png = os.path.abspath(args.keep) if args.keep else os.path.join(tmp, "shot.png")
        try:
            screenshot(args.chromium, args.svg, width, height, png)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"render_svg_check: {e}", file=sys.stderr)
            return 2
        with open(png, "rb") as f:
            pixels = decode_png(f.read())
    errors = layout + check(pixels, width, height)
    for e in errors:
        print(f"render_svg_check: FAIL: {args.svg}: {e}", file=sys.stderr)
    if not errors:
        print(f"render_svg_check: OK: {args.svg} renders as {width}x{height}" + (f" ({args.keep})" if args.keep else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
