"""Minimal safetensors reader and writer on numpy arrays (no third-party package needed).

File layout: an 8-byte little-endian header length N, N bytes of JSON
({"name": {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}),
then the raw little-endian tensor data; offsets are relative to the end of the header.
Supported dtypes: F32, F64, BF16, I32, I64. BF16 is read into float32 (exact) and written from
float32/float64 with round-to-nearest-even. Tensors are written in sorted-name order with contiguous offsets;
the header is padded with spaces to a multiple of 8 bytes so the data starts aligned.
"""

import json
import struct

import numpy as np

_NUMPY_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}
_ITEM_SIZES = {"F32": 4, "F64": 8, "BF16": 2, "I32": 4, "I64": 8}


class SafetensorsError(ValueError):
    """A malformed file or an unsupported tensor; the message names the file and the tensor."""


def _bf16_to_f32(raw):
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _f32_to_bf16(values):
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(values)
    rounded[nan] = 0x7FC0
    return rounded.astype(np.uint16)


def read(path):
    """Returns (tensors, metadata): tensors maps name -> numpy array (BF16 as float32); metadata is a dict or {}."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: {len(blob)} bytes, too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise SafetensorsError(f"{path}: header length {header_len} exceeds file size {len(blob)}")
    try:
        header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not JSON: {e}") from e
    data = memoryview(blob)[8 + header_len :]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dtype = info.get("dtype")
        shape = [int(s) for s in info.get("shape", [])]
        begin, end = (int(o) for o in info.get("data_offsets", [0, 0]))
        if dtype not in _ITEM_SIZES:
            raise SafetensorsError(f"{path}: tensor '{name}' has unsupported dtype {dtype}")
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * _ITEM_SIZES[dtype] or end > len(data) or begin < 0:
            raise SafetensorsError(
                f"{path}: tensor '{name}' ({dtype} {shape}) has offsets [{begin}, {end}] "
                f"inconsistent with its size or the data length {len(data)}"
            )
        raw = data[begin:end]
        if dtype == "BF16":
            array = _bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            array = np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype]).copy()
        tensors[name] = array.reshape(shape)
    return tensors, metadata


def write(path, tensors, dtypes=None, metadata=None):
    """Writes tensors (name -> array-like) to path. dtypes maps a name to F32/F64/BF16/I32/I64; a name not in it
    keeps F32 for floating arrays, I64 for integer ones. metadata: optional {str: str}."""
    dtypes = dtypes or {}
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        dtype = dtypes.get(name, "I64" if np.issubdtype(array.dtype, np.integer) else "F32")
        if dtype == "BF16":
            raw = _f32_to_bf16(array.astype(np.float32)).astype("<u2").tobytes()
        elif dtype in _NUMPY_DTYPES:
            raw = np.ascontiguousarray(array, dtype=_NUMPY_DTYPES[dtype]).tobytes()
        else:
            raise SafetensorsError(f"{path}: tensor '{name}' requested unsupported dtype {dtype}")
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)
