# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding over the C++ core (ext/codec.hpp). Every call into C++ releases the GIL."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_Next
from cpython.long cimport PyLong_AsLongLong
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
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
        int crack_format

    StreamInfo open_stream "crackle::StreamInfo::open"(const uint8_t*, uint64_t) except +raise_py_error nogil
    Header parse_header "crackle::Header::parse"(const uint8_t*, uint64_t) except +raise_py_error nogil
    Layout layout_of "crackle::Layout::of"(const uint8_t*, uint64_t, const Header&) except +raise_py_error nogil
    cdef cppclass VolumeStrides:
        uint64_t row
        uint64_t plane

    vector[uint8_t] compress_c "crackle::compress"(const void*, int, cbool, uint32_t, uint32_t, uint32_t,
                                                   const VolumeStrides&, const EncodeOptions&) except +raise_py_error nogil
    void decode_c "crackle::decode"(const StreamInfo&, uint32_t, uint32_t, void*, int) except +raise_py_error nogil
    void check_labels_crc_c "crackle::check_labels_crc"(const StreamInfo&) except +raise_py_error nogil
    void check_slice_codes_c "crackle::check_slice_codes"(const StreamInfo&, uint32_t, uint32_t) except +raise_py_error nogil
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

cdef extern from "label_list.hpp" namespace "crackle":
    cdef cppclass LabelList:
        Header header
        uint64_t count()
    LabelList open_label_list "crackle::LabelList::open"(const uint8_t*, uint64_t) except +raise_py_error nogil
    uint64_t distinct_label_values(const LabelList&, void*) nogil

cdef extern from "label_compare.hpp" namespace "crackle":
    cbool streams_equal_c "crackle::streams_equal"(const StreamInfo&, const StreamInfo&, int) except +raise_py_error nogil

cdef extern from "label_remap.hpp" namespace "crackle":
    cdef cppclass RemapPlan:
        NewSection section
        FormatChange format
    cbool plan_remap_c "crackle::plan_remap"(const StreamInfo&, const int64_t*, const int64_t*, uint64_t, cbool,
                                              RemapPlan&) except +raise_py_error nogil

cdef extern from "reencode.hpp" namespace "crackle":
    vector[uint8_t] reencode_c "crackle::reencode"(const StreamInfo&, int, int) except +raise_py_error nogil

cdef extern from "mode_pooling.hpp" namespace "crackle":
    void mode_pool_2x2[T](const T*, const int64_t*, uint64_t, uint64_t, uint64_t, cbool, T*, const int64_t*) nogil
    void mode_pool_blocks[T](const T*, const int64_t*, const uint64_t*, const uint32_t*, T*, const int64_t*) nogil

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


cdef dict _layout_fields(const Header& h, const Layout& L):
    """The header fields and section layout, shared by info() and layout_info()."""
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
        "has_crcs": L.has_crcs,
        "header_bytes": h.header_bytes(),
        "index_bytes": L.index_bytes,
        "label_offset": L.labels_offset,
        "label_bytes": h.num_label_bytes,
        "model_bytes": L.model_bytes,
        "crack_bytes": L.codes_bytes,
        "crc_bytes": L.trailer_bytes,
    }


def info(const uint8_t[::1] buf, bint check_labels=False):
    """Header fields and section layout of a stream, after checking its structure (and with
    check_labels, the labels CRC: what the label queries read)."""
    cdef StreamInfo s = _open(buf)
    if check_labels:
        with nogil:
            check_labels_crc_c(s)
    cdef Header h = s.header
    fields = _layout_fields(h, s.layout)
    fields.update({
        "num_unique": s.labels.num_unique,
        "unique_offset": s.labels.unique_offset,
        "cc_per_grid_offset": s.labels.cc_per_grid_offset,
        "keys_offset": s.labels.keys_offset,
        "key_width": s.labels.key_width,
        "cc_width": s.labels.cc_width,
        "num_components": s.labels.num_components(),
    })
    return fields


cdef VolumeStrides _element_strides(cnp.ndarray volume) except *:
    """The (row, plane) strides of an (sx, sy, sz) array in elements; ValueError unless x is contiguous
    and the other strides are whole, non-negative numbers of elements (see crackle_codec.core)."""
    cdef Py_ssize_t item = volume.dtype.itemsize
    cdef VolumeStrides strides
    sx, sy, sz = volume.shape[0], volume.shape[1], volume.shape[2]
    dx, dy, dz = volume.strides[0], volume.strides[1], volume.strides[2]
    if volume.size == 0:
        dx, dy, dz = item, item * sx, item * sx * sy  # nothing is read
    if (sx > 1 and dx != item) or (sy > 1 and (dy < 0 or dy % item)) or (sz > 1 and (dz < 0 or dz % item)):
        raise ValueError(f"internal: the encoder reads volumes with contiguous rows, got strides {(dx, dy, dz)}")
    strides.row = dy // item if sy > 1 else sx
    strides.plane = dz // item if sz > 1 else sx * sy
    return strides


def compress(cnp.ndarray volume, bint fortran, int markov_order, bint allow_pins, int threads, bint optimize=False,
             int crack_format=-1):
    """Compress an (sx, sy, sz) integer array with contiguous rows (x), in place: its rows and slices
    may be strided (a view into a larger array); see crackle_codec.compress."""
    if volume.ndim != 3 or not volume.flags.aligned:
        raise ValueError("internal: expected an aligned 3D array")
    cdef VolumeStrides strides = _element_strides(volume)
    cdef EncodeOptions opt
    opt.fortran = fortran
    opt.markov_order = markov_order
    opt.allow_pins = allow_pins
    opt.optimize = optimize
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
        out = compress_c(data, itemsize, is_signed, sx, sy, sz, strides, opt)
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


# ------------------------------------------------- per-slice queries (label_geometry.hpp)

cdef extern from "label_geometry.hpp" namespace "crackle":
    cdef cppclass LabelStats:
        vector[uint64_t] count
        vector[uint32_t] lo[3]
        vector[uint32_t] hi[3]
        vector[double] sum[3]

    void stream_label_stats(const StreamInfo&, cbool, int64_t, cbool, cbool, LabelStats&) except +raise_py_error nogil
    vector[uint8_t] stream_slices_holding(const StreamInfo&, uint64_t) except +raise_py_error nogil
    void stream_label_binary(const StreamInfo&, cbool, const uint8_t*, int64_t, const uint32_t*, const uint32_t*,
                             const int64_t*, uint8_t*) except +raise_py_error nogil
    vector[uint8_t] stream_face_labels(const StreamInfo&, cbool) except +raise_py_error nogil
    vector[uint8_t] stream_labels_in_slices(const StreamInfo&, cbool, uint32_t, uint32_t) except +raise_py_error nogil


cdef _as_array(const void* data, size_t n, dtype):
    """A new 1-D numpy array of ``dtype`` holding the ``n`` items at ``data`` (a vector's contents)."""
    out = np.empty(n, dtype=dtype)
    if n:
        memcpy(cnp.PyArray_DATA(out), data, n * out.itemsize)
    return out


cdef _u64_array(const vector[uint64_t]& v):
    return _as_array(v.data(), v.size(), np.uint64)


cdef _u32_array(const vector[uint32_t]& v):
    return _as_array(v.data(), v.size(), np.uint32)


cdef _f64_array(const vector[double]& v):
    return _as_array(v.data(), v.size(), np.float64)


cdef _u8_array(const vector[uint8_t]& v):
    return _as_array(v.data(), v.size(), np.uint8)


def label_stats(const uint8_t[::1] buf, bint verify, int64_t only, bint boxes, bint sums):
    """Per label index: voxel counts, and boxes (lo, hi inclusive) and coordinate sums on request."""
    cdef StreamInfo s = _open(buf)
    cdef LabelStats st
    with nogil:
        stream_label_stats(s, verify, only, boxes, sums, st)
    out = {"count": _u64_array(st.count)}
    cdef int a
    if boxes:
        out["lo"] = [_u32_array(st.lo[a]) for a in range(3)]
        out["hi"] = [_u32_array(st.hi[a]) for a in range(3)]
    if sums:
        out["sum"] = [_f64_array(st.sum[a]) for a in range(3)]
    return out


def slices_holding(const uint8_t[::1] buf, uint64_t index):
    """Per slice, 1 where label index `index` may have voxels (exact for FLAT)."""
    cdef StreamInfo s = _open(buf)
    cdef vector[uint8_t] v
    with nogil:
        v = stream_slices_holding(s, index)
    return _u8_array(v)


def label_binary(const uint8_t[::1] buf, bint verify, const uint8_t[::1] wanted, int64_t only, lo, hi,
                 cnp.ndarray out):
    """Set out's voxels (box lo..hi, exclusive) of the wanted label indices to 1; out is zeroed uint8/bool."""
    cdef StreamInfo s = _open(buf)
    cdef uint32_t clo[3]
    cdef uint32_t chi[3]
    cdef int64_t stride[3]
    cdef int a
    for a in range(3):
        clo[a] = lo[a]
        chi[a] = hi[a]
        stride[a] = out.strides[a]
    if out.itemsize != 1 or out.ndim != 3:
        raise ValueError("internal: expected a 3D one-byte array")
    if <uint64_t>wanted.shape[0] < s.labels.num_unique + (1 if s.header.label_format == 2 else 0):
        raise ValueError("internal: wanted is too short")
    cdef uint8_t* dst = <uint8_t*>cnp.PyArray_DATA(out)
    cdef const uint8_t* w = _ptr(wanted)
    with nogil:
        stream_label_binary(s, verify, w, only, clo, chi, stride, dst)


def face_labels(const uint8_t[::1] buf, bint verify):
    """Per label index, 1 if the label has a voxel on one of the volume's six faces."""
    cdef StreamInfo s = _open(buf)
    cdef vector[uint8_t] v
    with nogil:
        v = stream_face_labels(s, verify)
    return _u8_array(v)


def labels_in_slices(const uint8_t[::1] buf, bint verify, uint32_t z0, uint32_t z1):
    """Per label index, 1 if the label has a voxel in slices [z0, z1)."""
    cdef StreamInfo s = _open(buf)
    if z1 > s.header.sz or z0 > z1:
        raise IndexError(f"z range {z0}:{z1} is outside 0:{s.header.sz}")
    cdef vector[uint8_t] v
    with nogil:
        v = stream_labels_in_slices(s, verify, z0, z1)
    return _u8_array(v)


# --------------------------------------------- neighbour queries (label_neighbours.hpp)


cdef extern from "label_neighbours.hpp" namespace "crackle":
    cdef cppclass SliceLabeler:
        SliceLabeler(const StreamInfo&, cbool) except +raise_py_error nogil
        uint64_t num_indices()

    cdef cppclass SurfacePoints:
        vector[uint64_t] offset
        void write[T](T*) nogil

    cdef cppclass Contacts:
        pass

    void contact_arrays "crackle::contact_arrays"(const Contacts&, int, vector[uint64_t]&, vector[uint64_t]&) nogil

    void surface_points_c "crackle::stream_surface_points"(const StreamInfo&, cbool, const uint32_t*, const uint8_t*,
                                                           uint32_t, const uint8_t*, uint32_t, uint32_t, int,
                                                           SurfacePoints&) except +raise_py_error nogil
    void connectivity_graph_c "crackle::stream_connectivity_graph"(const StreamInfo&, cbool, const uint32_t*, int,
                                                                   const int64_t*, uint8_t*, int) except +raise_py_error nogil
    void contact_faces_c "crackle::stream_contact_faces"(const StreamInfo&, cbool, const uint32_t*, int64_t, int,
                                                         Contacts&) except +raise_py_error nogil
    void ids_at_c "crackle::ids_at"(SliceLabeler&, const uint32_t*, const uint32_t*, uint64_t, uint32_t*) except +raise_py_error nogil
    void component_parents_c "crackle::component_parents"(SliceLabeler&, const uint32_t*, SliceLabeler&, const uint32_t*,
                                                          vector[int64_t]&) except +raise_py_error nogil


cdef void _check_canon(const StreamInfo& s, const uint32_t[::1] canon) except *:
    cdef uint64_t n = s.labels.num_unique + (1 if s.header.label_format == 2 else 0)
    if <uint64_t>canon.shape[0] != n:
        raise ValueError("internal: canon must have one entry per label index")


def surface_points(const uint8_t[::1] buf, bint verify, const uint32_t[::1] canon, const uint8_t[::1] wanted,
                   const uint8_t[::1] visit, uint32_t z0, uint32_t z1, bint wide, int threads=1):
    """Surface voxels of the wanted canonical ids in slices [z0, z1): ((n, 3) xyz grouped by id,
    uint32 when ``wide`` else uint16; offsets: id k's rows are offsets[k]:offsets[k+1]), on
    ``threads`` threads (0: every core)."""
    cdef StreamInfo s = _open(buf)
    _check_canon(s, canon)
    cdef uint32_t i
    for i in range(canon.shape[0]):
        if canon[i] >= <uint32_t>wanted.shape[0]:
            raise ValueError("internal: wanted is too short")
    if <uint64_t>visit.shape[0] != s.header.sz or z1 > s.header.sz or z0 > z1:
        raise ValueError("internal: bad slice range")
    if not wide and max(s.header.sx, s.header.sy, s.header.sz) > 0xFFFF:
        raise ValueError("internal: coordinates do not fit uint16")
    cdef SurfacePoints pts
    cdef const uint8_t* pw = _ptr(wanted)
    cdef const uint8_t* pv = _ptr(visit)
    cdef uint32_t n_ids = wanted.shape[0]
    with nogil:
        surface_points_c(s, verify, _ptr32(canon), pw, n_ids, pv, z0, z1, threads, pts)
    cdef uint64_t n = pts.offset.back() if pts.offset.size() else 0
    xyz = np.empty((n, 3), dtype=np.uint32 if wide else np.uint16)
    cdef void* dst = cnp.PyArray_DATA(<cnp.ndarray>xyz)
    with nogil:
        if wide:
            pts.write[uint32_t](<uint32_t*>dst)
        else:
            pts.write[uint16_t](<uint16_t*>dst)
    return xyz, _u64_array(pts.offset)


cdef const uint32_t* _ptr32(const uint32_t[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


def connectivity_graph(const uint8_t[::1] buf, bint verify, const uint32_t[::1] canon, int connectivity,
                       cnp.ndarray out, int threads=1):
    """Fill out (uint8, the volume's shape) with each voxel's connectivity bits, on ``threads``
    threads (0: every core)."""
    cdef StreamInfo s = _open(buf)
    _check_canon(s, canon)
    if out.ndim != 3 or out.itemsize != 1 or out.shape[0] != s.header.sx or out.shape[1] != s.header.sy \
            or out.shape[2] != s.header.sz:
        raise ValueError("internal: out has the wrong shape")
    cdef int64_t stride[3]
    cdef int a
    for a in range(3):
        stride[a] = out.strides[a]
    cdef uint8_t* dst = <uint8_t*>cnp.PyArray_DATA(out)
    with nogil:
        connectivity_graph_c(s, verify, _ptr32(canon), connectivity, stride, dst, threads)


def contact_faces(const uint8_t[::1] buf, bint verify, const uint32_t[::1] canon, int64_t skip, int threads=1):
    """Per axis, (keys a << 32 | b, face counts) between canonical ids a < b (neither `skip`), on
    ``threads`` threads (0: every core)."""
    cdef StreamInfo s = _open(buf)
    _check_canon(s, canon)
    cdef Contacts c
    with nogil:
        contact_faces_c(s, verify, _ptr32(canon), skip, threads, c)
    cdef vector[uint64_t] keys, counts
    out = []
    cdef int a
    for a in range(3):
        contact_arrays(c, a, keys, counts)
        out.append((_u64_array(keys), _u64_array(counts)))
    return out


def ids_at(const uint8_t[::1] buf, bint verify, const uint32_t[::1] canon, const uint32_t[:, ::1] xyz):
    """Canonical id at each (x, y, z) row of xyz (all inside the volume)."""
    cdef StreamInfo s = _open(buf)
    _check_canon(s, canon)
    cdef uint64_t n = xyz.shape[0]
    out = np.zeros(n, dtype=np.uint32)
    if n == 0:
        return out
    if xyz.shape[1] != 3:
        raise ValueError("internal: xyz must be (n, 3)")
    cdef uint64_t i
    for i in range(n):
        if xyz[i, 0] >= s.header.sx or xyz[i, 1] >= s.header.sy or xyz[i, 2] >= s.header.sz:
            raise ValueError("internal: point outside the volume")
    cdef uint32_t[::1] o = out
    cdef SliceLabeler* lab
    with nogil:
        lab = new SliceLabeler(s, verify)
        try:
            ids_at_c(lab[0], _ptr32(canon), &xyz[0, 0], n, &o[0])
        finally:
            del lab
    return out


def component_parents(const uint8_t[::1] buf_a, const uint32_t[::1] canon_a, uint64_t n_a,
                      const uint8_t[::1] buf_b, const uint32_t[::1] canon_b, bint verify):
    """parent[i] = canonical id in b of a voxel with canonical id i in a (-1: none)."""
    cdef StreamInfo sa = _open(buf_a)
    cdef StreamInfo sb = _open(buf_b)
    _check_canon(sa, canon_a)
    _check_canon(sb, canon_b)
    if (sa.header.sx, sa.header.sy, sa.header.sz) != (sb.header.sx, sb.header.sy, sb.header.sz):
        raise ValueError("the two streams have different shapes")
    cdef uint32_t i
    for i in range(canon_a.shape[0]):
        if canon_a[i] >= n_a:
            raise ValueError("internal: n_a is too small")
    cdef vector[int64_t] parent
    parent.assign(n_a, -1)
    cdef SliceLabeler* la
    cdef SliceLabeler* lb
    if <uint64_t>sa.header.sx * sa.header.sy * sa.header.sz == 0:
        return np.full(n_a, -1, dtype=np.int64)
    with nogil:
        la = new SliceLabeler(sa, verify)
        try:
            lb = new SliceLabeler(sb, verify)
            try:
                component_parents_c(la[0], _ptr32(canon_a), lb[0], _ptr32(canon_b), parent)
            finally:
                del lb
        finally:
            del la
    return np.asarray([parent[i] for i in range(n_a)], dtype=np.int64)


def layout_info(const uint8_t[::1] buf):
    """The fields of info() that the header and the section layout give, without parsing the
    labels section (header, nbytes, components: what needs no label)."""
    cdef const uint8_t* p = _ptr(buf)
    cdef uint64_t n = buf.shape[0]
    cdef Header h
    cdef Layout L
    with nogil:
        h = parse_header(p, n)
        L = layout_of(p, n, h)
    return _layout_fields(h, L)

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


def sorted_labels(const uint8_t[::1] buf):
    """The distinct label values of a stream, sorted, in the volume's dtype, from its label list
    alone (label_list.hpp: the header, layout and labels CRC are checked first)."""
    cdef const uint8_t* p = _ptr(buf)
    cdef uint64_t n = buf.shape[0]
    cdef LabelList lst
    with nogil:
        lst = open_label_list(p, n)
    cdef cnp.ndarray out = np.empty(lst.count(), dtype=f"{'i' if lst.header.is_signed else 'u'}{lst.header.data_width}")
    cdef void* dst = cnp.PyArray_DATA(out)
    cdef uint64_t m
    with nogil:
        m = distinct_label_values(lst, dst)
    return out if m == lst.count() else out[:m]


def streams_equal(const uint8_t[::1] buf_a, const uint8_t[::1] buf_b, int threads):
    """Whether two streams decode to the same values (label_compare.hpp): run by run, no voxel
    written; the labels CRCs and the compared slices' CRCs are checked."""
    cdef StreamInfo a = _open(buf_a)
    cdef StreamInfo b = _open(buf_b)
    if (a.header.sx, a.header.sy, a.header.sz) != (b.header.sx, b.header.sy, b.header.sz):
        return False
    cdef cbool same
    with nogil:
        same = streams_equal_c(a, b, threads)
    return same


def remap_stream(const uint8_t[::1] buf, const int64_t[::1] keys, const int64_t[::1] values, bint preserve_missing):
    """remap's common case in one call (label_remap.hpp): the stream with every label v replaced
    by values[i] where keys[i] == v, its labels CRC checked first; None when the general path
    must decide (an empty volume or mapping, a key or new value outside the dtype, a missing label)."""
    cdef uint64_t n = keys.shape[0]
    if n == 0 or <uint64_t>values.shape[0] != n:
        return None
    cdef StreamInfo s = _open(buf)
    cdef RemapPlan plan
    cdef cbool ok
    cdef uint64_t size = 0
    cdef const int64_t* kp = &keys[0]
    cdef const int64_t* vp = &values[0]
    with nogil:
        ok = plan_remap_c(s, kp, vp, n, preserve_missing, plan)
        if ok:
            check_labels_crc_c(s)
            size = rewritten_size_c(s, plan.section, plan.format)
    if not ok:
        return None
    result = PyBytes_FromStringAndSize(NULL, size)
    cdef uint8_t* dst = <uint8_t*><char*>result
    with nogil:
        rewrite_stream_c(s, plan.section, plan.format, dst)
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


def mode_pool_blocks_into(cnp.ndarray image, cnp.ndarray out, tuple factor):
    """Mode pooling of a 3D integer array by ``factor`` (1 or 2 per axis) into ``out`` (see
    crackle_codec.zarr.pyramids and ext/mode_pooling.hpp for the rule)."""
    if image.ndim != 3 or out.ndim != 3 or image.dtype.itemsize != out.dtype.itemsize:
        raise ValueError("internal: mode_pool_blocks needs two 3D arrays of one element size")
    if len(factor) != 3 or any(f not in (1, 2) for f in factor):
        raise ValueError(f"internal: mode_pool_blocks factors must be 1 or 2, got {factor}")
    cdef int64_t in_stride[3]
    cdef int64_t out_stride[3]
    cdef uint64_t shape[3]
    cdef uint32_t fac[3]
    cdef int k
    cdef int item = image.dtype.itemsize
    for k in range(3):
        in_stride[k] = image.strides[k] // item
        out_stride[k] = out.strides[k] // item
        shape[k] = image.shape[k]
        fac[k] = factor[k]
        if <uint64_t>out.shape[k] != (shape[k] + fac[k] - 1) // fac[k]:
            raise ValueError("internal: mode_pool_blocks output has the wrong shape")
    if not out.flags.writeable:
        raise ValueError("internal: mode_pool_blocks output is read-only")
    cdef void* src = cnp.PyArray_DATA(image)
    cdef void* dst = cnp.PyArray_DATA(out)
    with nogil:
        if item == 1:
            mode_pool_blocks[uint8_t](<const uint8_t*>src, in_stride, shape, fac, <uint8_t*>dst, out_stride)
        elif item == 2:
            mode_pool_blocks[uint16_t](<const uint16_t*>src, in_stride, shape, fac, <uint16_t*>dst, out_stride)
        elif item == 4:
            mode_pool_blocks[uint32_t](<const uint32_t*>src, in_stride, shape, fac, <uint32_t*>dst, out_stride)
        else:
            mode_pool_blocks[uint64_t](<const uint64_t*>src, in_stride, shape, fac, <uint64_t*>dst, out_stride)
    return out


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

# ------------------------------------------------ 3D connected components (label_components.hpp)

cdef extern from "label_components.hpp" namespace "crackle":
    cdef cppclass ComponentLabels:
        vector[uint64_t] cc_of
        vector[uint32_t] label_of
        uint64_t count

    void connected_components_c "crackle::connected_components_3d"(SliceLabeler&, const uint32_t*, int64_t, int, cbool,
                                                                   ComponentLabels&) except +raise_py_error nogil


def connected_components(const uint8_t[::1] buf, bint verify, const uint32_t[::1] canon, int64_t zero,
                         int connectivity, bint binary):
    """(3D component per global component, canonical id of each component's first voxel)."""
    cdef StreamInfo s = _open(buf)
    _check_canon(s, canon)
    cdef ComponentLabels out
    cdef SliceLabeler* lab
    with nogil:
        lab = new SliceLabeler(s, verify)
        try:
            connected_components_c(lab[0], _ptr32(canon), zero, connectivity, binary, out)
        finally:
            del lab
    return _u64_array(out.cc_of), _u32_array(out.label_of)
