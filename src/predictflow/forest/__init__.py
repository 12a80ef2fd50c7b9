"""Tree-ensemble bundles compiled to native code.

- `trees`: the ensemble read from the ONNX graph's attributes (build time; needs `onnx`).
- `codegen`: that ensemble as C, deterministic, one function per bundle.
- `build`: the C compiled into one shared library per machine kind (build time; needs a compiler).
- `runtime`: a library loaded with ctypes and its raw sums finished as ONNX Runtime finishes them
  (run time: the standard library and numpy only, so the Lambda layer gains nothing).
"""
