"""Open a Crackle array with ``crackle_codec.view`` in headless Chromium and take a screenshot.

Run by tests/test_view.py in a subprocess with a timeout (a browser without WebGL2 makes
Neuroglancer's screenshot call wait forever). Also usable by hand:

    python tests/view_screenshot.py SOURCE OUT.png [--axes x,y,z] [--label ID ...] [--size 800,600]

Prints one JSON object: the screenshot's size, the chunk requests the server answered, the chunks
our codec decoded, the colours found, and timings.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import sys
import threading
import time

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not look for a driver online

CHROME_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    # WebGL2 in software: Neuroglancer needs it and a headless machine has no GPU.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
]


def find_browser() -> tuple[str | None, str | None]:
    """(browser binary, chromedriver) found on PATH, or None for what is missing."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-headless-shell", "google-chrome",
                                                  "chromium-browser")) if p), None)
    return browser, shutil.which("chromedriver")


class _Counter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.served = 0

    def emit(self, record):
        if "served" in record.getMessage():
            self.served += 1


def _count_codec_decodes() -> dict[str, int]:
    """Count the chunks decoded by our Zarr codecs (format 3 and format 2) from now on."""
    from crackle_codec import numcodecs_codec, zarr3

    counts = {"chunks": 0}
    lock = threading.Lock()

    def counted(fn):
        def wrapper(*args, **kwargs):
            with lock:
                counts["chunks"] += 1
            return fn(*args, **kwargs)
        return wrapper

    zarr3.CrackleCodec._decode_sync = counted(zarr3.CrackleCodec._decode_sync)
    zarr3.CrackleCodec._decode_selection_sync = counted(zarr3.CrackleCodec._decode_selection_sync)
    numcodecs_codec.Crackle.decode = counted(numcodecs_codec.Crackle.decode)
    return counts


def screenshot(source: str, out: str, *, axes: str | None = None, labels: list[int] | None = None,
               size: tuple[int, int] = (800, 600), layout: str = "xy") -> dict:
    import numpy as np
    import neuroglancer
    import neuroglancer.webdriver
    from PIL import Image

    import crackle_codec

    decodes = _count_codec_decodes()
    counter = _Counter()
    log = logging.getLogger("crackle_codec.view")
    log.setLevel(logging.DEBUG)
    log.addHandler(counter)

    browser, driver = find_browser()
    t0 = time.perf_counter()
    viewer = crackle_codec.view(source, axes=axes, labels=labels, layout=layout)
    url = viewer.get_viewer_url()
    assert url.startswith("http://127.0.0.1:"), url
    with neuroglancer.webdriver.Webdriver(viewer, headless=True, browser_binary_path=browser,
                                          window_size=size, extra_command_line_args=CHROME_ARGS,
                                          print_logs=False):
        t_browser = time.perf_counter() - t0
        shot = viewer.screenshot(size=list(size))
        t_shot = time.perf_counter() - t0
    png = shot.screenshot.image
    with open(out, "wb") as f:
        f.write(png)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    if layout == "4panel":  # look at the x-y panel, the top-left quarter
        pixels = pixels[: pixels.shape[0] // 2, : pixels.shape[1] // 2]
    h, w, _ = pixels.shape
    centre = pixels[h // 2 - h // 8: h // 2 + h // 8, w // 2 - w // 8: w // 2 + w // 8].reshape(-1, 3)
    corner = pixels[:4, :4].reshape(-1, 3)
    background = [int(v) for v in np.median(corner, axis=0)]
    differs = np.any(centre != np.asarray(background, dtype=pixels.dtype), axis=1)
    return {
        "url": url,
        "width": shot.screenshot.width,
        "height": shot.screenshot.height,
        "requests_served": counter.served,
        "codec_chunks_decoded": decodes["chunks"],
        "background": background,
        "centre_colours": int(len(np.unique(centre, axis=0))),
        "centre_differs": float(differs.mean()),
        "browser_s": round(t_browser, 2),
        "screenshot_s": round(t_shot, 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--axes")
    p.add_argument("--label", type=int, action="append")
    p.add_argument("--size", default="800,600")
    p.add_argument("--layout", default="xy")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    result = screenshot(args.source, args.out, axes=args.axes, labels=args.label, size=size, layout=args.layout)
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # the server and zarr threads are daemons, but skip their slow teardown


if __name__ == "__main__":
    raise SystemExit(main())
