"""``view``: show a Crackle Zarr array or ``.ckl`` stream in Neuroglancer, served from this machine."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import time
from typing import Any

from ..errors import EXIT_OK, CLIError, _codec
from ..registry import _subcommand


LAYOUTS = ("4panel", "xy", "xz", "yz", "3d", "xy-3d", "xz-3d", "yz-3d")


def _port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535 (0 = any free port), got {text!r}")
    return port


def _floats_arg(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive numbers, got {text!r}")
    return values


@_subcommand("view", "Show a Crackle Zarr array or .ckl stream in Neuroglancer, served from this machine.")
def _setup_view(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH",
                   help="a Zarr array (format 2 or 3, sharded or not), an OME-Zarr multiscale group, "
                        "or a .ckl stream")
    p.add_argument("--label", type=int, action="append", default=[], metavar="ID",
                   help="select this label (repeat for several)")
    p.add_argument("--image", metavar="PATH", help="an image to show beside it (Zarr array or .npy)")
    p.add_argument("--axes", metavar="NAMES",
                   help="axis names in array order, e.g. x,y,z (default: OME-Zarr metadata, else the array's "
                        "dimension_names, else z,y,x)")
    p.add_argument("--voxel-size", type=_floats_arg, metavar="S1,S2,S3",
                   help="voxel size per axis, in array order (default: OME-Zarr metadata, else 1)")
    p.add_argument("--units", metavar="UNIT", help="unit of the voxel size, e.g. nm (default: none)")
    p.add_argument("--layout", default="4panel", choices=LAYOUTS, metavar="LAYOUT",
                   help=f"Neuroglancer layout: {', '.join(LAYOUTS)} (default: 4panel)")
    p.add_argument("--port", type=_port_arg, default=0, metavar="N",
                   help="server port on 127.0.0.1 (default: any free port)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL, do not open a browser")
    p.add_argument("-v", "--verbose", action="store_true", help="log every chunk request the server answers")
    p.set_defaults(run=run_view)


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the server, even where the shell started us with SIGINT ignored."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def run_view(args: argparse.Namespace) -> int:
    cc = _codec()
    view_module = importlib.import_module("crackle_codec.view")  # cc.view is the function
    if not os.path.exists(args.path) and "://" not in args.path:
        raise CLIError(f"{args.path}: no such file or directory")
    if args.image and not os.path.exists(args.image):
        raise CLIError(f"{args.image}: no such file or directory")
    try:
        import neuroglancer
    except ImportError:
        raise CLIError(f"view needs the neuroglancer package: {view_module.VIEW_INSTALL_HINT}") from None
    if args.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        view_module.logger.addHandler(handler)
        view_module.logger.setLevel(logging.DEBUG)
    _stop_on_signals()  # before the server starts, so that no interrupt leaves it half-done
    try:
        _serve(cc, args)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the shutdown
        neuroglancer.stop()
        print("Stopped.", flush=True)
    return EXIT_OK


def _serve(cc: Any, args: argparse.Namespace) -> None:
    """Start the viewer, print its URL, open a browser, and serve until interrupted."""
    try:
        viewer = cc.view(args.path, labels=args.label or None, image=args.image, axes=args.axes,
                         voxel_size=args.voxel_size, units=args.units, port=args.port, layout=args.layout)
    except OSError as exc:
        if exc.filename is not None or not exc.strerror:
            raise
        raise CLIError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror}") from None  # port in use
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{args.path}: {exc}") from None
    url = viewer.get_viewer_url()
    seg = next(v for v in viewer.volume_manager.volumes.values() if v.volume.name == "segmentation").volume
    print(f"Serving {seg.description}, axes {','.join(seg.axes)}")
    print(url)
    print("Press Ctrl-C to stop.", flush=True)
    if not args.no_browser:
        import webbrowser

        if not webbrowser.open(url):
            print("(no web browser found: open the URL above)", flush=True)
    while True:
        time.sleep(3600)
