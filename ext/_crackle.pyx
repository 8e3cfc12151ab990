# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding over the C++ core (ext/codec.hpp). Every call into C++ releases the GIL."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_Next
from cpython.long cimport PyLong_AsLongLong
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
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
        int threads
        int crack_format

    StreamInfo open_stream "crackle::StreamInfo::open"(const uint8_t*, uint64_t) except +raise_py_error nogil
    Header parse_header "crackle::Header::parse"(const uint8_t*, uint64_t) except +raise_py_error nogil
    vector[uint8_t] compress_c "crackle::compress"(const void*, int, cbool, uint32_t, uint32_t, uint32_t,
                                                   const EncodeOptions&) except +raise_py_error nogil
    void decode_c "crackle::decode"(const StreamInfo&, uint32_t, uint32_t, void*, int) except +raise_py_error nogil
    void check_labels_crc_c "crackle::check_labels_crc"(const StreamInfo&) except +raise_py_error nogil
    vector[uint8_t] replace_labels_c "crackle::replace_labels"(const StreamInfo&, const uint8_t*, uint64_t, int,
                                                               cbool, cbool) except +raise_py_error nogil

cdef extern from "stream_rewrite.hpp" namespace "crackle":
    cdef cppclass FormatChange:
        int data_width, stored_width
        cbool is_signed, fortran, unsorted, remapped
    cdef cppclass NewSection:
        const uint8_t* head
        uint64_t head_size, keep_offset, keep_size
    uint64_t rewritten_size_c "crackle::rewritten_size"(const StreamInfo&, const NewSection&, const FormatChange&) except +raise_py_error nogil
    void rewrite_stream_c "crackle::rewrite_stream"(const StreamInfo&, const NewSection&, const FormatChange&,
                                                    uint8_t*) except +raise_py_error nogil

cdef extern from "reencode.hpp" namespace "crackle":
    vector[uint8_t] reencode_c "crackle::reencode"(const StreamInfo&, int, int) except +raise_py_error nogil

cdef extern from "mode_pooling.hpp" namespace "crackle":
    void mode_pool_2x2[T](const T*, const int64_t*, uint64_t, uint64_t, uint64_t, cbool, T*, const int64_t*) nogil

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


def info(const uint8_t[::1] buf):
    """Header fields and section layout of a stream, after checking its structure."""
    cdef StreamInfo s = _open(buf)
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


def compress(cnp.ndarray volume, bint fortran, int markov_order, bint allow_pins, int threads, int crack_format=-1):
    """Compress a Fortran-contiguous (sx, sy, sz) integer array; see crackle_codec.compress."""
    if volume.ndim != 3 or not volume.flags.f_contiguous:
        raise ValueError("internal: expected a Fortran-contiguous 3D array")
    cdef EncodeOptions opt
    opt.fortran = fortran
    opt.markov_order = markov_order
    opt.allow_pins = allow_pins
    opt.threads = threads
    opt.crack_format = crack_format
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
    try:
        out = np.empty((h.sx, h.sy, z1 - z0), dtype=dtype, order="F" if h.fortran else "C")
    except ValueError as e:  # numpy cannot represent the shape (even an empty one)
        raise DecodeError(f"header: a {h.sx}x{h.sy}x{z1 - z0} volume cannot be represented: {e}") from None
    cdef void* dst = cnp.PyArray_DATA(<cnp.ndarray>out)
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


def rewrite_stream(const uint8_t[::1] buf, const uint8_t[::1] head, uint64_t keep_from, uint64_t keep_to,
                   int data_width, int stored_width, bint is_signed, bint fortran, bint unsorted, bint remapped,
                   bint check_crc, out=None):
    """The stream with a new labels section, ``head`` followed by the input's bytes
    [keep_from, keep_to), and a new header format (see crackle_codec.operations).

    ``out``: a writable buffer of exactly the new size (the input itself for an in-place rewrite),
    or None for a new bytes object. ``check_crc``: check the input's labels CRC first.
    """
    cdef StreamInfo s = _open(buf)
    cdef FormatChange f
    f.data_width = data_width
    f.stored_width = stored_width
    f.is_signed = is_signed
    f.fortran = fortran
    f.unsorted = unsorted
    f.remapped = remapped
    cdef NewSection n
    n.head = _ptr(head)
    n.head_size = head.shape[0]
    n.keep_offset = keep_from
    n.keep_size = keep_to - keep_from if keep_to > keep_from else 0
    cdef uint64_t size
    with nogil:
        if check_crc:
            check_labels_crc_c(s)
        size = rewritten_size_c(s, n, f)
    cdef uint8_t[::1] dst
    cdef uint8_t* dst_ptr
    if out is None:
        result = PyBytes_FromStringAndSize(NULL, size)
        dst_ptr = <uint8_t*><char*>result
    else:
        dst = out
        if <uint64_t>dst.shape[0] != size:
            raise ValueError("internal: in-place rewrite needs an output of the same size")
        result = out
        dst_ptr = &dst[0]
    cdef uint8_t* p = dst_ptr
    with nogil:
        rewrite_stream_c(s, n, f, p)
    return result


def reencode(const uint8_t[::1] buf, int markov_order, int threads):
    """The stream with its crack codes coded under another markov order (see crackle_codec.reencode)."""
    cdef StreamInfo s = _open(buf)
    cdef vector[uint8_t] out
    with nogil:
        check_labels_crc_c(s)
        out = reencode_c(s, markov_order, threads)
    return _to_bytes(out)


def mode_pool(cnp.ndarray image, cnp.ndarray out, bint sparse):
    """2x2x1 mode pooling of a 3D integer array into ``out`` (see crackle_codec.mode_pooling_2x2x1)."""
    if image.ndim != 3 or out.ndim != 3 or image.dtype.itemsize != out.dtype.itemsize:
        raise ValueError("internal: mode_pool needs two 3D arrays of one element size")
    cdef int64_t in_stride[3]
    cdef int64_t out_stride[3]
    cdef int k
    cdef int item = image.dtype.itemsize
    for k in range(3):
        in_stride[k] = image.strides[k] // item
        out_stride[k] = out.strides[k] // item
    cdef uint64_t sx = image.shape[0], sy = image.shape[1], sz = image.shape[2]
    if (<uint64_t>out.shape[0] != (sx + 1) // 2 or <uint64_t>out.shape[1] != (sy + 1) // 2
            or <uint64_t>out.shape[2] != sz):
        raise ValueError("internal: mode_pool output has the wrong shape")
    cdef void* src = cnp.PyArray_DATA(image)
    cdef void* dst = cnp.PyArray_DATA(out)
    with nogil:
        if item == 1:
            mode_pool_2x2[uint8_t](<const uint8_t*>src, in_stride, sx, sy, sz, sparse, <uint8_t*>dst, out_stride)
        elif item == 2:
            mode_pool_2x2[uint16_t](<const uint16_t*>src, in_stride, sx, sy, sz, sparse, <uint16_t*>dst, out_stride)
        elif item == 4:
            mode_pool_2x2[uint32_t](<const uint32_t*>src, in_stride, sx, sy, sz, sparse, <uint32_t*>dst, out_stride)
        else:
            mode_pool_2x2[uint64_t](<const uint64_t*>src, in_stride, sx, sy, sz, sparse, <uint64_t*>dst, out_stride)


def int_dict_arrays(dict mapping):
    """(keys, values) of a dict as int64 arrays, in iteration order, when every key and value is
    a Python int within int64; None otherwise (the caller then takes its general path)."""
    cdef Py_ssize_t n = len(mapping), pos = 0, i = 0
    cdef cnp.ndarray keys = np.empty(n, dtype=np.int64)
    cdef cnp.ndarray values = np.empty(n, dtype=np.int64)
    cdef int64_t* kv = <int64_t*>cnp.PyArray_DATA(keys)
    cdef int64_t* vv = <int64_t*>cnp.PyArray_DATA(values)
    cdef PyObject* k
    cdef PyObject* v
    try:
        while PyDict_Next(mapping, &pos, &k, &v):
            if type(<object>k) is not int or type(<object>v) is not int:
                return None
            kv[i] = PyLong_AsLongLong(<object>k)
            vv[i] = PyLong_AsLongLong(<object>v)
            i += 1
    except OverflowError:
        return None
    return keys, values
