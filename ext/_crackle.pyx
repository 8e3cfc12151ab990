# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding over the C++ core (ext/codec.hpp). Every call into C++ releases the GIL."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

cimport numpy as cnp
import numpy as np

from crackle_codec.errors import DecodeError

cnp.import_array()

cdef extern from "python_errors.hpp" namespace "crackle":
    void set_decode_error_type(PyObject*)
    void raise_py_error()

cdef extern from "crc.hpp" namespace "crackle":
    uint8_t crc8_c "crackle::crc8"(const uint8_t*, size_t) nogil
    uint32_t crc32c_c "crackle::crc32c"(const uint8_t*, size_t, uint32_t) nogil
    const char* crc32c_implementation_c "crackle::crc32c_implementation"()

cdef extern from "codec.hpp" namespace "crackle":
    cdef cppclass Header:
        uint8_t version
        uint32_t sx, sy, sz
        uint64_t num_label_bytes
        int data_width, stored_width, label_format, markov_order
        cbool permissible, fortran, is_signed, unsorted, remapped
        uint64_t header_bytes()

    cdef cppclass Layout:
        cbool has_crcs
        uint64_t index_bytes, labels_offset, model_bytes, codes_bytes, trailer_bytes

    cdef cppclass LabelsSection:
        uint64_t num_unique, unique_offset, cc_per_grid_offset, keys_offset
        int key_width, cc_width
        uint64_t num_components()

    cdef cppclass StreamInfo:
        Header header
        Layout layout
        LabelsSection labels

    cdef cppclass EncodeOptions:
        cbool fortran
        int markov_order
        cbool allow_pins
        cbool optimize
        int threads

    StreamInfo open_stream "crackle::StreamInfo::open"(const uint8_t*, uint64_t) except +raise_py_error nogil
    Header parse_header "crackle::Header::parse"(const uint8_t*, uint64_t) except +raise_py_error nogil
    vector[uint8_t] compress_c "crackle::compress"(const void*, int, cbool, uint32_t, uint32_t, uint32_t,
                                                   const EncodeOptions&) except +raise_py_error nogil
    void decode_c "crackle::decode"(const StreamInfo&, uint32_t, uint32_t, void*, int) except +raise_py_error nogil
    void check_labels_crc_c "crackle::check_labels_crc"(const StreamInfo&) except +raise_py_error nogil
    void check_slice_codes_c "crackle::check_slice_codes"(const StreamInfo&, uint32_t, uint32_t) except +raise_py_error nogil
    vector[uint8_t] replace_labels_c "crackle::replace_labels"(const StreamInfo&, const uint8_t*, uint64_t, int,
                                                               cbool, cbool) except +raise_py_error nogil

set_decode_error_type(<PyObject*>DecodeError)

cdef uint8_t EMPTY[1]
EMPTY[0] = 0


cdef const uint8_t* _ptr(const uint8_t[::1] buf) noexcept:
    # A zero-length buffer has no element 0; hand C++ a valid pointer it will not read.
    return &buf[0] if buf.shape[0] > 0 else EMPTY


cdef StreamInfo _open(const uint8_t[::1] buf) except *:
    cdef const uint8_t* p = _ptr(buf)
    cdef uint64_t n = buf.shape[0]
    cdef StreamInfo s
    with nogil:
        s = open_stream(p, n)
    return s


cdef bytes _to_bytes(const vector[uint8_t]& v):
    return PyBytes_FromStringAndSize(<const char*>v.data(), v.size())


def shape(const uint8_t[::1] buf):
    """(sx, sy, sz) from the header alone (checks the magic, version and header CRC8)."""
    cdef Header h = parse_header(_ptr(buf), buf.shape[0])
    return (h.sx, h.sy, h.sz)


def info(const uint8_t[::1] buf, bint check_labels=False):
    """Header fields and section layout of a stream, after checking its structure (and with
    check_labels, the labels CRC: what the label queries read)."""
    cdef StreamInfo s = _open(buf)
    if check_labels:
        with nogil:
            check_labels_crc_c(s)
    cdef Header h = s.header
    return {
        "version": h.version,
        "sx": h.sx, "sy": h.sy, "sz": h.sz,
        "data_width": h.data_width,
        "stored_width": h.stored_width,
        "signed": h.is_signed,
        "fortran": h.fortran,
        "label_format": h.label_format,
        "crack_format": 1 if h.permissible else 0,
        "markov_order": h.markov_order,
        "unsorted": h.unsorted,
        "remapped": h.remapped,
        "has_crcs": s.layout.has_crcs,
        "header_bytes": h.header_bytes(),
        "index_bytes": s.layout.index_bytes,
        "label_offset": s.layout.labels_offset,
        "label_bytes": h.num_label_bytes,
        "model_bytes": s.layout.model_bytes,
        "crack_bytes": s.layout.codes_bytes,
        "crc_bytes": s.layout.trailer_bytes,
        "num_unique": s.labels.num_unique,
        "unique_offset": s.labels.unique_offset,
        "cc_per_grid_offset": s.labels.cc_per_grid_offset,
        "keys_offset": s.labels.keys_offset,
        "key_width": s.labels.key_width,
        "num_components": s.labels.num_components(),
    }


def compress(cnp.ndarray volume, bint fortran, int markov_order, bint allow_pins, int threads, bint optimize=False):
    """Compress a Fortran-contiguous (sx, sy, sz) integer array; see crackle_codec.compress."""
    if volume.ndim != 3 or not volume.flags.f_contiguous:
        raise ValueError("internal: expected a Fortran-contiguous 3D array")
    cdef EncodeOptions opt
    opt.fortran = fortran
    opt.markov_order = markov_order
    opt.allow_pins = allow_pins
    opt.optimize = optimize
    opt.threads = threads
    cdef const void* data = cnp.PyArray_DATA(volume)
    cdef int itemsize = volume.dtype.itemsize
    cdef cbool is_signed = volume.dtype.kind == "i"
    cdef uint32_t sx, sy, sz
    cdef vector[uint8_t] out
    if max(volume.shape[0], volume.shape[1], volume.shape[2]) > 0xFFFFFFFF:
        raise ValueError(f"each dimension must be below 2^32, got {(volume.shape[0], volume.shape[1], volume.shape[2])}")
    sx, sy, sz = volume.shape[0], volume.shape[1], volume.shape[2]
    with nogil:
        out = compress_c(data, itemsize, is_signed, sx, sy, sz, opt)
    return _to_bytes(out)


def decompress(const uint8_t[::1] buf, uint32_t z0, uint32_t z1, int threads):
    """Decode slices [z0, z1) into a new (sx, sy, z1-z0) array in the stream's dtype and order."""
    cdef StreamInfo s = _open(buf)
    cdef Header h = s.header
    if z1 > h.sz or z0 > z1:
        raise IndexError(f"z range {z0}:{z1} is outside 0:{h.sz}")
    dtype = np.dtype(("<i" if h.is_signed else "<u") + str(h.data_width))
    # Before an output sized by the header: the slices' own BOC sections (O(their bytes)).
    with nogil:
        check_slice_codes_c(s, z0, z1)
    try:
        out = np.empty((h.sx, h.sy, z1 - z0), dtype=dtype, order="F" if h.fortran else "C")
    except ValueError as e:  # numpy cannot represent the shape (even an empty one)
        raise DecodeError(f"header: a {h.sx}x{h.sy}x{z1 - z0} volume cannot be represented: {e}") from None
    cdef void* dst = cnp.PyArray_DATA(<cnp.ndarray>out)
    with nogil:
        decode_c(s, z0, z1, dst, threads)
    return out


def layout(const uint8_t[::1] buf):
    """(sx, sy, sz, dtype, fortran) from the header alone: what decompress_into needs to size ``out``."""
    cdef Header h = parse_header(_ptr(buf), buf.shape[0])
    return (h.sx, h.sy, h.sz, np.dtype(("<i" if h.is_signed else "<u") + str(h.data_width)), h.fortran)


def decompress_into(const uint8_t[::1] buf, uint32_t z0, uint32_t z1, cnp.ndarray out, int threads):
    """Decode slices [z0, z1) into ``out``, a writeable (sx, sy, z1-z0) array of the stream's dtype
    (``bool`` for a uint8 stream too) that is F- or C-contiguous: the slices are written in the
    layout of ``out`` (F when it is both), whatever order the header records. Returns ``out``.

    TypeError for another dtype (never a cast); DecodeError for another shape (the stream does not
    fit the destination); ValueError for a read-only or non-contiguous ``out``.
    """
    cdef StreamInfo s = _open(buf)
    cdef Header h = s.header
    if z1 > h.sz or z0 > z1:
        raise IndexError(f"z range {z0}:{z1} is outside 0:{h.sz}")
    dtype = np.dtype(("<i" if h.is_signed else "<u") + str(h.data_width))
    if out.dtype != dtype and not (out.dtype == np.bool_ and dtype == np.uint8):
        raise TypeError(f"the Crackle stream holds {dtype} labels; cannot decode them into a {out.dtype} array")
    if out.ndim != 3 or (out.shape[0], out.shape[1], out.shape[2]) != (h.sx, h.sy, z1 - z0):
        raise DecodeError(f"the Crackle stream decodes to a {h.sx}x{h.sy}x{z1 - z0} volume; "
                          f"the destination has shape {(<object>out).shape}")
    if not out.flags.writeable:
        raise ValueError("the destination array is read-only")
    if not (out.flags.f_contiguous or out.flags.c_contiguous):
        raise ValueError("the destination array must be C- or F-contiguous")
    s.header.fortran = out.flags.f_contiguous
    cdef void* dst = cnp.PyArray_DATA(out)
    with nogil:
        decode_c(s, z0, z1, dst, threads)
    return out


def verify(const uint8_t[::1] buf, int threads):
    """Decode every slice without output, checking every CRC and count."""
    cdef StreamInfo s = _open(buf)
    cdef uint32_t sz = s.header.sz
    with nogil:
        decode_c(s, 0, sz, NULL, threads)


def check_labels_crc(const uint8_t[::1] buf):
    cdef StreamInfo s = _open(buf)
    with nogil:
        check_labels_crc_c(s)


def replace_labels(const uint8_t[::1] buf, const uint8_t[::1] section, int stored_width, bint unsorted, bint remapped):
    """The stream with a new labels section (see crackle_codec.remap)."""
    cdef StreamInfo s = _open(buf)
    cdef const uint8_t* sec = _ptr(section)
    cdef uint64_t n = section.shape[0]
    cdef vector[uint8_t] out
    with nogil:
        out = replace_labels_c(s, sec, n, stored_width, unsorted, remapped)
    return _to_bytes(out)


def crc32c(const uint8_t[::1] buf, uint32_t crc=0):
    """CRC-32C (Castagnoli) of a buffer."""
    cdef const uint8_t* p = _ptr(buf)
    cdef size_t n = buf.shape[0]
    with nogil:
        crc = crc32c_c(p, n, crc)
    return crc


def crc8(const uint8_t[::1] buf):
    """The header CRC8 (polynomial 0xE7, init 0xFF)."""
    return crc8_c(_ptr(buf), buf.shape[0])


def crc32c_implementation():
    """Which CRC32C implementation this machine uses."""
    return crc32c_implementation_c().decode()
