// Maps C++ exceptions from the core to Python exceptions. Included only by the Cython binding;
// the core itself never sees Python.
#pragma once

#include <Python.h>

#include <new>
#include <stdexcept>

#include "common.hpp"

namespace crackle {

inline PyObject*& decode_error_type() {
  static PyObject* type = nullptr;
  return type;
}

inline void set_decode_error_type(PyObject* type) {
  Py_XINCREF(type);
  decode_error_type() = type;
}

// Called by Cython inside its catch block (`except +raise_py_error`).
inline void raise_py_error() {
  try {
    throw;
  } catch (const DecodeError& e) {
    PyErr_SetString(decode_error_type() ? decode_error_type() : PyExc_ValueError, e.what());
  } catch (const EncodeError& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::length_error& e) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception in crackle_codec");
  }
}

}  // namespace crackle
