"""Open a Crackle array with ``crackle_codec.view`` in headless Chromium and take a screenshot.

Run by tests/test_view.py in a subprocess with a timeout (a browser without WebGL2 makes
Neuroglancer's screenshot call wait forever). Also usable by hand:

    python tests/view_screenshot.py SOURCE OUT.png [--axes x,y,z] [--label ID ...] [--size 800,600] [--cli]

Without ``--cli`` it calls ``crackle_codec.view`` in this process and takes Neuroglancer's own
screenshot, which waits until every visible chunk has loaded. With ``--cli`` it runs
``crackle-zarr view SOURCE --no-browser -v`` as a separate process, opens the printed URL in Chromium
through Selenium, takes browser screenshots until the x-y panel shows the segmentation (or a
minute passes), then stops the command with Ctrl-C (SIGINT) as a user would.

Prints one JSON object: the screenshot's size, the chunk requests the server answered, the chunks
our codec decoded, the colours found, and timings.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
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
    import neuroglancer
    import neuroglancer.webdriver

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
    result = {"url": url, **_pixel_stats(png, layout), "requests_served": counter.served,
              "codec_chunks_decoded": decodes["chunks"], "browser_s": round(t_browser, 2),
              "screenshot_s": round(t_shot, 2)}
    return result


def _pixel_stats(png: bytes, layout: str) -> dict:
    """Size of the screenshot; background colour, and colours in the centre of the x-y panel.

    ``layout``: "4panel" or "xy" for Neuroglancer's screenshots (its canvas only; the background is
    read in the panel's corner), "page" for a browser screenshot of the whole page with one x-y panel
    (the background is read at the left margin of the panel, half-way down).
    """
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    height, width, _ = pixels.shape
    if layout == "4panel":  # look at the x-y panel, the top-left quarter
        pixels = pixels[: height // 2, : width // 2]
    h, w, _ = pixels.shape
    centre = pixels[h // 2 - h // 8: h // 2 + h // 8, w // 2 - w // 8: w // 2 + w // 8].reshape(-1, 3)
    corner = pixels[h // 2 - 8: h // 2 + 8, 4:12] if layout == "page" else pixels[:4, :4]
    background = [int(v) for v in np.median(corner.reshape(-1, 3), axis=0)]
    differs = np.any(centre != np.asarray(background, dtype=pixels.dtype), axis=1)
    return {"width": width, "height": height, "background": background,
            "centre_colours": int(len(np.unique(centre, axis=0))), "centre_differs": float(differs.mean())}


def screenshot_cli(source: str, out: str, cli_args: list[str], *, size: tuple[int, int] = (800, 600),
                   layout: str = "xy", wait_s: float = 60.0) -> dict:
    """Run ``crackle-zarr view`` and look at its URL in Chromium; stop it with SIGINT at the end."""
    import selenium.webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_browser()
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "crackle_codec.cli", "view", source, "--no-browser", "-v",
               "--layout", layout, *cli_args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        header = proc.stdout.readline()
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (header, url, log)
        options = selenium.webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in ["--headless=new", f"--window-size={size[0]},{size[1]}", *CHROME_ARGS]:
            options.add_argument(arg)
        driver = selenium.webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        try:
            driver.get(url)
            t_browser = time.perf_counter() - t0
            stats, previous = None, None
            while time.perf_counter() - t0 < wait_s:  # until the picture shows labels and stops changing
                png = driver.get_screenshot_as_png()
                stats = _pixel_stats(png, "page")
                if stats["centre_colours"] >= 10 and png == previous:
                    break
                previous = png
                time.sleep(0.5)
            t_shot = time.perf_counter() - t0
        finally:
            driver.quit()
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
        reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with open(out, "wb") as f:
        f.write(png)
    served = [line for line in log if "served" in line]
    decoded = [int(m.group(1)) for m in map(re.compile(r"\((\d+) chunks decoded so far\)").search, served) if m]
    return {"url": url, **stats, "requests_served": len(served), "codec_chunks_decoded": max(decoded, default=0),
            "header": header.strip(), "exit_code": proc.returncode, "stopped": stdout.strip().endswith("Stopped."),
            "browser_s": round(t_browser, 2), "screenshot_s": round(t_shot, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--axes")
    p.add_argument("--label", type=int, action="append")
    p.add_argument("--size", default="800,600")
    p.add_argument("--layout", default="xy")
    p.add_argument("--cli", action="store_true",
                   help="run crackle-zarr view and look at it with Selenium (use --layout xy)")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    if args.cli:
        cli_args = (["--axes", args.axes] if args.axes else []) + [f"--label={i}" for i in args.label or []]
        result = screenshot_cli(args.source, args.out, cli_args, size=size, layout=args.layout)
    else:
        result = screenshot(args.source, args.out, axes=args.axes, labels=args.label, size=size,
                            layout=args.layout)
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # the server and zarr threads are daemons, but skip their slow teardown


if __name__ == "__main__":
    raise SystemExit(main())
