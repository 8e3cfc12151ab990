"""Commands on Crackle stream files: info, verify, compress, decompress, labels, remap."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from ..args import _add_force, _add_max_voxels, _add_parallel, _markov_arg, _threads_arg
from ..errors import EXIT_FAILURE, EXIT_OK, CLIError, _codec, _one_line
from ..files import (STREAM_SUFFIXES, VOLUME_SUFFIXES, _OPTIONAL_LIBRARIES, _check_new_output, _chunks_hint,
                     _optional_library, _output_file, _read_stream, _read_volume, _read_whole, _replace_suffix,
                     _require_file, _stream_suffix, _volume_suffix, _write_volume)
from ..registry import _subcommand
from ..text import _fmt_time, _ratio_text, _shape_text


def stream_info(path: str, stream: bytes) -> dict[str, Any]:
    """The facts ``info`` prints about ``stream`` (read from ``path``), as a JSON-ready dict."""
    cc = _codec()
    h = cc.header(stream)
    try:
        n_labels: Any = cc.num_labels(stream)
        labels_error = None
    except cc.DecodeError as exc:
        n_labels, labels_error = None, " ".join(str(exc).split())
    raw = h.voxels * h.dtype.itemsize
    info: dict[str, Any] = {
        "file": path,
        "file_bytes": os.path.getsize(path),
        "stream_bytes": len(stream),
        "version": h.version,
        "has_crcs": h.has_crcs,
        "shape": list(h.shape),
        "voxels": h.voxels,
        "dtype": h.dtype.name,
        "order": h.order,
        "stored_width": h.stored_width,
        "label_format": h.label_format,
        "labels": n_labels,
        "unsorted": h.unsorted,
        "remapped": h.remapped,
        "crack_format": h.crack_format,
        "markov_model_order": h.markov_model_order,
        "raw_bytes": raw,
        "ratio": raw / len(stream) if len(stream) else None,
        "sections": {
            "header": h.header_bytes,
            "crack index": h.index_bytes,
            "labels": h.label_bytes,
            "markov model": h.markov_model_bytes,
            "crack codes": h.crack_code_bytes,
            "CRCs": h.crc_bytes,
        },
    }
    if labels_error is not None:
        info["labels_error"] = labels_error
    return info


@_subcommand("info", "Print the header, section sizes, label count and compression ratio of a stream.")
def _setup_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a Crackle stream (.ckl, optionally .gz/.bz2/.xz/.zst)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    """``info FILE [--json]``: the facts of ``stream_info``, as text or one JSON object."""
    stream = _read_stream(args.file)
    info = stream_info(args.file, stream)
    if args.json:
        print(json.dumps(info))
        return EXIT_OK
    sx, sy, sz = info["shape"]
    width_bytes = info["stored_width"]
    n_labels = info["labels"] if info["labels"] is not None else f"unreadable ({info['labels_error']})"
    file_text = f"{args.file} ({len(stream):,} bytes of stream"
    if info["file_bytes"] != len(stream):
        file_text += f", {info['file_bytes']:,} bytes on disk"
    rows = [
        ("file", file_text + ")"),
        ("format version", f"{info['version']}" + ("" if info["has_crcs"] else " (no CRCs)")),
        ("shape", f"{sx} x {sy} x {sz} ({info['voxels']:,} voxels), decodes {info['order']}-ordered"),
        ("dtype", f"{info['dtype']} (labels stored in {width_bytes} byte{'s' if width_bytes > 1 else ''})"),
        ("labels", f"{n_labels}, {info['label_format']} label table" + (", unsorted" if info["unsorted"] else "")
         + (", remapped" if info["remapped"] else "")),
        ("crack codes", _crack_codes_text(info)),
        ("ratio", f"{info['ratio']:.1f}x (raw {info['raw_bytes']:,} bytes)" if info["ratio"] else "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("sections")
    for name, size in info["sections"].items():
        share = 100.0 * size / len(stream) if len(stream) else 0.0
        print(f"  {name:<{width - 2}}  {size:>12,} bytes  {share:5.1f}%")
    return EXIT_OK


def _crack_codes_text(info: dict[str, Any]) -> str:
    """What the crack codes store and how they are modelled, in words (with the one knob to turn)."""
    drawn = ("boundaries between different labels" if info["crack_format"] == "impermissible"
             else "connections between equal labels (the encoder's choice for fragmented volumes)")
    order = info["markov_model_order"]
    if order == 0:
        return f"{drawn}, no markov model (compress --markov 5 is usually 10-25% smaller)"
    return f"{drawn}, markov model order {order}"


@_subcommand("verify", "Check streams completely (every CRC and structural rule); exit 1 if any fails.")
def _setup_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="Crackle streams (.ckl, optionally compressed)")
    p.add_argument("--parallel", type=_threads_arg, default=1, metavar="N", help="threads, 0 = all cores")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    _add_max_voxels(p)
    p.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """``verify FILE...``: OK/FAIL per stream (FAIL names the failing section); 1 if any fails."""
    cc = _codec()
    failed = 0
    for path in args.files:
        try:
            cc.verify(_read_stream(path), parallel=args.parallel, max_voxels=args.max_voxels)
        except (CLIError, cc.DecodeError, OSError) as exc:
            failed += 1
            # A DecodeError's message starts with the failing section; the class name adds nothing.
            message = " ".join(str(exc).split()) if isinstance(exc, cc.DecodeError) else _one_line(exc)
            if message.startswith(f"{path}: "):
                message = message[len(path) + 2:]
            print(f"FAIL  {path}: {message}")
            continue
        if not args.quiet:
            print(f"OK    {path}")
    if len(args.files) > 1 and not args.quiet:
        print(f"{len(args.files) - failed} ok, {failed} failed")
    return EXIT_FAILURE if failed else EXIT_OK


# ------------------------------------------------------------------------- compress / decompress

@_subcommand("compress", "Compress a volume (.npy, .npz, .tif, .nii[.gz]) into a Crackle stream (.ckl[.gz|.bz2|.xz|.zst]).")
def _setup_compress(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="a volume: " + ", ".join(VOLUME_SUFFIXES))
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the stream to write; its extension picks a second compression stage: "
                        + ", ".join(STREAM_SUFFIXES) + " (default: IN with its extension replaced by .ckl)")
    p.add_argument("--key", metavar="NAME", help="the array to read from an .npz holding several")
    p.add_argument("--markov", type=_markov_arg, default=0, metavar="N",
                   help="markov model order of the crack codes, 0..10 (0 = none, fastest; 5 = smaller)")
    p.add_argument("--pins", action="store_true", help="allow the PINS label format (often smaller)")
    p.add_argument("--optimize", action="store_true",
                   help="choose the label format and markov order that give the smallest stream "
                        "(instead of --pins/--markov)")
    p.add_argument("--transpose", action="store_true",
                   help="reverse the axes first: a (z, y, x) TIFF stack becomes (x, y, z), so that "
                        "Crackle's slices are its image planes")
    _add_parallel(p)
    p.add_argument("--no-progress", action="store_true", help="no progress display while reading IN")
    _add_force(p)
    p.set_defaults(run=run_compress)


def run_compress(args: argparse.Namespace) -> int:
    """``compress IN``: a volume file to a Crackle stream file (second stage by OUT extension)."""
    cc = _codec()
    _require_file(args.input)
    _volume_suffix(args.input, "input")
    out = args.output or _replace_suffix(args.input, VOLUME_SUFFIXES, ".ckl")
    _stream_suffix(out, "output")
    _check_new_output(out, args.force)  # before the (possibly long) read
    volume = _read_whole(_read_volume(args.input, key=args.key, lazy=True), args.input,
                         progress=not args.no_progress)
    if args.transpose:
        volume = volume.T
    volume, dropped = _squeeze_to_3d(volume, args.input)
    t0 = time.perf_counter()
    try:
        stream = cc.compress(volume, allow_pins=args.pins, markov_model_order=args.markov, parallel=args.parallel,
                             optimize=args.optimize)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"{args.input}: {exc}") from exc
    with _output_file(out, args.force) as tmp:
        cc.save(stream, tmp)
    seconds = time.perf_counter() - t0
    size = os.path.getsize(out)
    note = f" (length-1 axes {dropped} dropped)" if dropped else ""
    print(f"{args.input} -> {out}: {_shape_text(volume.shape)} {volume.dtype}{note}, {volume.nbytes:,} bytes -> "
          f"{size:,} bytes ({_ratio_text(volume.nbytes, size)}) in {_fmt_time(seconds)}")
    return EXIT_OK


def _squeeze_to_3d(volume: np.ndarray, path: str) -> tuple[np.ndarray, list[int]]:
    """``volume`` without the length-1 axes that make it more than 3D (leading ones first, as
    ``convert`` chunks them), and the indices of the axes dropped; an error saying what to do when
    more than 3 axes are longer than 1."""
    shape = list(volume.shape)
    keep = list(range(len(shape)))
    while len(keep) > 3 and shape[keep[0]] == 1:
        keep.pop(0)
    while len(keep) > 3 and shape[keep[-1]] == 1:
        keep.pop()
    if len(keep) > 3:
        order = "F" if volume.flags.f_contiguous and not volume.flags.c_contiguous else "C"
        long_axes = sum(1 for s in shape if s > 1)
        raise CLIError(f"{path}: a {len(shape)}D volume of shape {tuple(shape)} with {long_axes} axes longer than 1; "
                       "a Crackle stream holds 3: compress one 3D volume at a time (save volume[i] per file), "
                       f"or store it all with 'crackle-zarr convert' and --chunks {_chunks_hint(shape, order)}")
    dropped = [i for i in range(len(shape)) if i not in keep]
    return (volume.reshape([shape[i] for i in keep], order="A") if dropped else volume), dropped


@_subcommand("decompress", "Decode a Crackle stream into a volume file (.npy, .npz, .tif, .nii[.gz]).")
def _setup_decompress(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="a Crackle stream (.ckl, optionally .gz/.bz2/.xz/.zst)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the volume to write, format by extension: " + ", ".join(VOLUME_SUFFIXES)
                        + " (default: IN with its extension replaced by .npy)")
    p.add_argument("--key", metavar="NAME", default="labels", help="array name in an .npz output (default: labels)")
    p.add_argument("--transpose", action="store_true", help="reverse the axes of the decoded volume")
    _add_max_voxels(p)
    _add_parallel(p)
    _add_force(p)
    p.set_defaults(run=run_decompress)


def run_decompress(args: argparse.Namespace) -> int:
    """``decompress IN``: a Crackle stream file to a volume file (format by OUT extension)."""
    cc = _codec()
    _require_file(args.input)
    out = args.output or _replace_suffix(args.input, STREAM_SUFFIXES, ".npy")
    suffix = _volume_suffix(out, "output")
    if suffix in _OPTIONAL_LIBRARIES:
        _optional_library(suffix)
    _check_new_output(out, args.force)
    stream = _read_stream(args.input)
    t0 = time.perf_counter()
    try:
        volume = cc.decompress(stream, parallel=args.parallel, max_voxels=args.max_voxels)
    except cc.DecodeError as exc:
        raise CLIError(f"{args.input}: not a valid Crackle stream: {exc}") from exc
    if args.transpose:
        volume = volume.T
    with _output_file(out, args.force) as tmp:
        _write_volume(tmp, suffix, volume, args.key)
    print(f"{args.input} -> {out}: {_shape_text(volume.shape)} {volume.dtype} ({volume.nbytes:,} bytes) "
          f"in {_fmt_time(time.perf_counter() - t0)}")
    return EXIT_OK


# -------------------------------------------------------------------------------- labels / remap

@_subcommand("labels", "Print the label values of a stream (from its labels section, no voxel decoding).")
def _setup_labels(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a Crackle stream (.ckl, optionally compressed)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of one label per line")
    p.set_defaults(run=run_labels)


def run_labels(args: argparse.Namespace) -> int:
    """``labels FILE``: the stream's sorted label values, from its labels section."""
    cc = _codec()
    stream = _read_stream(args.file)
    try:
        values = cc.labels(stream).tolist()
    except cc.DecodeError as exc:
        raise CLIError(f"{args.file}: not a valid Crackle stream: {exc}") from exc
    if args.json:
        print(json.dumps(values))
    else:
        sys.stdout.write("".join(f"{int(v)}\n" for v in values))
    return EXIT_OK


def read_mapping(path: str) -> dict[int, int]:
    """A label mapping from a JSON object ``{"old": new, ...}`` (keys are strings in JSON)."""
    _require_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{path}: not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not valid JSON: not UTF-8 text") from exc
    if not isinstance(raw, dict):
        raise CLIError(f"{path}: expected a JSON object {{\"old label\": new label, ...}}, got a {type(raw).__name__}")
    mapping: dict[int, int] = {}
    for key, value in raw.items():
        try:
            old = int(key.strip())
        except ValueError:
            raise CLIError(f"{path}: key {key!r} is not an integer label") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise CLIError(f"{path}: label {key} maps to {json.dumps(value)}, which is not an integer")
        if old in mapping:
            raise CLIError(f"{path}: label {old} is mapped twice")
        mapping[old] = value
    return mapping


@_subcommand("remap", "Rewrite the label values of a stream with a JSON mapping, without decoding voxels.")
def _setup_remap(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a Crackle stream (.ckl, optionally compressed)")
    p.add_argument("mapping", metavar="MAPPING.json", help='a JSON object {"old": new, ...}')
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="the stream to write (" + ", ".join(STREAM_SUFFIXES) + ")")
    p.add_argument("--preserve-missing-labels", action="store_true",
                   help="labels not in the mapping keep their value (default: they are an error)")
    _add_force(p)
    p.set_defaults(run=run_remap)


def run_remap(args: argparse.Namespace) -> int:
    """``remap FILE MAPPING.json -o OUT``: ``crackle_codec.remap`` with a mapping read from JSON."""
    cc = _codec()
    _stream_suffix(args.output, "output")
    mapping = read_mapping(args.mapping)
    stream = _read_stream(args.file)
    _check_new_output(args.output, args.force)
    try:
        if not args.preserve_missing_labels:
            missing = [v for v in cc.labels(stream).tolist() if v not in mapping]
            if missing:
                raise CLIError(f"{args.file}: label {missing[0]} is not in {args.mapping}"
                               f"{f' (nor are {len(missing) - 1} more)' if len(missing) > 1 else ''} (map it, or "
                               "pass --preserve-missing-labels to keep the labels that are not mapped)")
        new = cc.remap(stream, mapping, preserve_missing_labels=args.preserve_missing_labels)
    except cc.DecodeError as exc:
        raise CLIError(f"{args.file}: not a valid Crackle stream: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CLIError(f"{args.file}: {exc}") from exc
    with _output_file(args.output, args.force) as tmp:
        cc.save(new, tmp)
    before, after = cc.labels(stream), cc.labels(new)
    print(f"{args.file} -> {args.output}: {len(before)} labels -> {len(after)} labels "
          f"({sum(1 for v in before.tolist() if mapping.get(v, v) != v)} changed)")
    return EXIT_OK
