"""A fine-tuned router encoder without shipping an encoder: LoRA deltas merged into the packaged
int8 MiniLM at load time, with numpy only (no torch, no `onnx` package).

The packaged graph (`packaged_encoder.py`) stores every weight matrix W (in x out, as MatMul takes
it) as an int8 initializer `<name>_q` and a per-output-column float scale `<name>_scale`
(W = q * scale, a Cast and a Mul in the graph). A LoRA adapter trained on the same MiniLM
(`tandem.training.routing.finetune`) is stored in the artifact as `encoder_lora.npz`: for each such
`<name>`, `<name>.down` (in x r) and `<name>.up` (r x out), so that W' = W + down @ up.

`merged_model_bytes` parses the ONNX protobuf just far enough to find those initializers' raw
bytes, re-quantizes W' per column to int8 (symmetric, the scheme the package uses) and writes the
new int8 values and scales over the old ones *in place*: shapes and byte lengths do not change, so
the result is the same graph with new weights, handed to ONNX Runtime as bytes. Nothing is written
to disk; it takes well under a second at router start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_INT8, _FLOAT, _INT64 = 3, 1, 7  # onnx TensorProto.DataType
_NUMPY = {_FLOAT: np.float32, _INT8: np.int8, 6: np.int32, _INT64: np.int64, 9: np.bool_}


class LoraMergeError(Exception):
    """The adapter does not fit the encoder graph (unknown initializer, shape, or storage)."""


@dataclass
class _Tensor:
    dims: tuple[int, ...]
    data_type: int
    start: int  # offset of raw_data's bytes in the model file
    length: int


def _varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes | bytearray, start: int, end: int):
    """(field number, wire type, value or (offset, length)) of one protobuf message's fields."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield field, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield field, wire, (pos, length)
            pos += length
        elif wire == 1:
            yield field, wire, None
            pos += 8
        elif wire == 5:
            yield field, wire, None
            pos += 4
        else:
            raise LoraMergeError(f"unsupported protobuf wire type {wire}")


def initializers(model: bytes | bytearray) -> dict[str, _Tensor]:
    """Name -> dims, type and where its raw_data lies, for every initializer of ModelProto.graph."""
    out: dict[str, _Tensor] = {}
    for field, wire, value in _fields(model, 0, len(model)):
        if field != 7 or wire != 2:  # ModelProto.graph
            continue
        g_start, g_len = value
        for g_field, g_wire, g_value in _fields(model, g_start, g_start + g_len):
            if g_field != 5 or g_wire != 2:  # GraphProto.initializer
                continue
            t_start, t_len = g_value
            dims: list[int] = []
            name, data_type, raw = "", 0, None
            for t_field, t_wire, t_value in _fields(model, t_start, t_start + t_len):
                if t_field == 1 and t_wire == 0:
                    dims.append(t_value)
                elif t_field == 1 and t_wire == 2:  # packed dims
                    pos, stop = t_value[0], t_value[0] + t_value[1]
                    while pos < stop:
                        dim, pos = _varint(model, pos)
                        dims.append(dim)
                elif t_field == 2 and t_wire == 0:
                    data_type = t_value
                elif t_field == 8 and t_wire == 2:
                    name = bytes(model[t_value[0]:t_value[0] + t_value[1]]).decode()
                elif t_field == 9 and t_wire == 2:
                    raw = t_value
            if raw is not None:
                out[name] = _Tensor(tuple(dims), data_type, raw[0], raw[1])
    return out


def read_tensor(model: bytes | bytearray, tensor: _Tensor) -> np.ndarray:
    dtype = _NUMPY.get(tensor.data_type)
    if dtype is None:
        raise LoraMergeError(f"initializer type {tensor.data_type} is not one this reader knows")
    return np.frombuffer(bytes(model[tensor.start:tensor.start + tensor.length]), dtype=dtype).reshape(tensor.dims)


def base_weights(model: bytes | bytearray) -> dict[str, np.ndarray]:
    """Every quantized matrix of the graph, dequantized: {name: q * scale} (in x out)."""
    table = initializers(model)
    out = {}
    for name, tensor in table.items():
        if name.endswith("_q") and name[:-2] + "_scale" in table:
            q = read_tensor(model, tensor).astype(np.float32)
            out[name[:-2]] = q * read_tensor(model, table[name[:-2] + "_scale"])
    return out


def quantize_columns(weight: np.ndarray, scale_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 over the axis the old scale spans (per output column for (1, out))."""
    axis = tuple(i for i, n in enumerate(scale_shape) if n == 1)
    scale = np.abs(weight).max(axis=axis, keepdims=True) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    return q, scale.reshape(scale_shape)


def merged_model_bytes(model_path: str | Path, lora_path: str | Path) -> bytes:
    """The encoder graph at `model_path` with the adapter at `lora_path` merged into its int8 weights."""
    model = bytearray(Path(model_path).read_bytes())
    table = initializers(model)
    with np.load(lora_path) as data:
        adapter = {key: data[key] for key in data.files}
    names = sorted({key.rsplit(".", 1)[0] for key in adapter})
    for name in names:
        q_t, s_t = table.get(name + "_q"), table.get(name + "_scale")
        if q_t is None or s_t is None or q_t.data_type != _INT8 or s_t.data_type != _FLOAT:
            raise LoraMergeError(f"the encoder graph has no int8 weight '{name}' to merge the adapter into")
        delta = adapter[name + ".down"].astype(np.float32) @ adapter[name + ".up"].astype(np.float32)
        if delta.shape != q_t.dims:
            raise LoraMergeError(f"adapter delta for '{name}' is {delta.shape}, the weight is {q_t.dims}")
        weight = read_tensor(model, q_t).astype(np.float32) * read_tensor(model, s_t) + delta
        q, scale = quantize_columns(weight, s_t.dims)
        model[q_t.start:q_t.start + q_t.length] = q.tobytes()
        model[s_t.start:s_t.start + s_t.length] = scale.astype(np.float32).tobytes()
    return bytes(model)
