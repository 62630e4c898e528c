# SPDX-License-Identifier: GPL-2.0-or-later
"""A dependency-free writer of GGUF files (version 3, little-endian).

Used by the tests to produce deterministic synthetic models and vocabularies.

    w = GGUFWriter()
    w.add_kv("general.architecture", GGUF_TYPE_STRING, "llama")
    w.add_array("tokenizer.ggml.tokens", GGUF_TYPE_STRING, ["<unk>", "<s>", ...])
    w.add_tensor("token_embd.weight", (n_embd, n_vocab), GGML_TYPE_F32, raw_bytes)
    w.write("model.gguf")

Layout written: header (magic, version, tensor count, kv count), the key/value pairs in
insertion order, the tensor infos in insertion order, padding to the alignment, then
the tensor data, each tensor starting at a multiple of the alignment relative to the
start of the data section. The alignment is general.alignment when that key was added
(it must be a UINT32 power of two), else 32.

Shapes are given in ggml order: shape[0] is ne0, the innermost (contiguous) dimension,
as the file stores them. raw_bytes must hold exactly the bytes ggml expects for that
type and shape (checked for the types in GGML_TYPE_SIZE).
"""

import struct

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
GGUF_DEFAULT_ALIGNMENT = 32

# GGUF metadata value types
GGUF_TYPE_UINT8 = 0
GGUF_TYPE_INT8 = 1
GGUF_TYPE_UINT16 = 2
GGUF_TYPE_INT16 = 3
GGUF_TYPE_UINT32 = 4
GGUF_TYPE_INT32 = 5
GGUF_TYPE_FLOAT32 = 6
GGUF_TYPE_BOOL = 7
GGUF_TYPE_STRING = 8
GGUF_TYPE_ARRAY = 9
GGUF_TYPE_UINT64 = 10
GGUF_TYPE_INT64 = 11
GGUF_TYPE_FLOAT64 = 12

# GGML tensor types (ids as in ggml.h)
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_Q4_0 = 2
GGML_TYPE_Q4_1 = 3
GGML_TYPE_Q5_0 = 6
GGML_TYPE_Q5_1 = 7
GGML_TYPE_Q8_0 = 8
GGML_TYPE_Q8_1 = 9
GGML_TYPE_Q2_K = 10
GGML_TYPE_Q3_K = 11
GGML_TYPE_Q4_K = 12
GGML_TYPE_Q5_K = 13
GGML_TYPE_Q6_K = 14
GGML_TYPE_Q8_K = 15
GGML_TYPE_I8 = 24
GGML_TYPE_I16 = 25
GGML_TYPE_I32 = 26
GGML_TYPE_I64 = 27
GGML_TYPE_F64 = 28
GGML_TYPE_BF16 = 30

# type id -> (elements per block, bytes per block)
GGML_TYPE_SIZE = {
    GGML_TYPE_F32: (1, 4),
    GGML_TYPE_F16: (1, 2),
    GGML_TYPE_BF16: (1, 2),
    GGML_TYPE_Q4_0: (32, 18),
    GGML_TYPE_Q4_1: (32, 20),
    GGML_TYPE_Q5_0: (32, 22),
    GGML_TYPE_Q5_1: (32, 24),
    GGML_TYPE_Q8_0: (32, 34),
    GGML_TYPE_Q8_1: (32, 36),
    GGML_TYPE_Q2_K: (256, 84),
    GGML_TYPE_Q3_K: (256, 110),
    GGML_TYPE_Q4_K: (256, 144),
    GGML_TYPE_Q5_K: (256, 176),
    GGML_TYPE_Q6_K: (256, 210),
    GGML_TYPE_Q8_K: (256, 292),
    GGML_TYPE_I8: (1, 1),
    GGML_TYPE_I16: (1, 2),
    GGML_TYPE_I32: (1, 4),
    GGML_TYPE_I64: (1, 8),
    GGML_TYPE_F64: (1, 8),
}

_SCALAR_FMT = {
    GGUF_TYPE_UINT8: "<B",
    GGUF_TYPE_INT8: "<b",
    GGUF_TYPE_UINT16: "<H",
    GGUF_TYPE_INT16: "<h",
    GGUF_TYPE_UINT32: "<I",
    GGUF_TYPE_INT32: "<i",
    GGUF_TYPE_FLOAT32: "<f",
    GGUF_TYPE_BOOL: "<?",
    GGUF_TYPE_UINT64: "<Q",
    GGUF_TYPE_INT64: "<q",
    GGUF_TYPE_FLOAT64: "<d",
}


def ggml_nbytes(ggml_type, shape):
    """Bytes of a tensor of that type and shape (ggml order)."""
    blck, size = GGML_TYPE_SIZE[ggml_type]
    n = 1
    for d in shape:
        n *= int(d)
    if shape and int(shape[0]) % blck:
        raise ValueError("ne0=%d is not a multiple of the block size %d" % (shape[0], blck))
    return n // blck * size


def _pack_string(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return struct.pack("<Q", len(s)) + bytes(s)


def _pack_value(gguf_type, value):
    if gguf_type == GGUF_TYPE_STRING:
        return _pack_string(value)
    if gguf_type in _SCALAR_FMT:
        return struct.pack(_SCALAR_FMT[gguf_type], value)
    raise ValueError("unsupported GGUF value type %r" % (gguf_type,))


class GGUFWriter:
    def __init__(self):
        self._kv = []        # (key, encoded type+value)
        self._keys = set()
        self._tensors = []   # (name, shape, type, bytes)
        self._names = set()
        self.alignment = GGUF_DEFAULT_ALIGNMENT

    def _check_key(self, key):
        if key in self._keys:
            raise ValueError("duplicate key %s" % key)
        self._keys.add(key)

    def add_kv(self, key, gguf_type, value):
        """One scalar or string value."""
        if gguf_type == GGUF_TYPE_ARRAY:
            raise ValueError("use add_array() for arrays")
        self._check_key(key)
        if key == "general.alignment":
            if gguf_type != GGUF_TYPE_UINT32 or value <= 0 or value & (value - 1):
                raise ValueError("general.alignment must be a UINT32 power of two")
            self.alignment = value
        self._kv.append((key, struct.pack("<I", gguf_type) + _pack_value(gguf_type, value)))

    def add_raw_kv(self, key, encoded):
        """A pre-encoded type+value (for writing deliberately broken files)."""
        self._check_key(key)
        self._kv.append((key, bytes(encoded)))

    def add_array(self, key, elem_gguf_type, values):
        """An array of scalars or strings (nested arrays are not written)."""
        self._check_key(key)
        values = list(values)
        out = [struct.pack("<IIQ", GGUF_TYPE_ARRAY, elem_gguf_type, len(values))]
        if elem_gguf_type in _SCALAR_FMT:
            fmt = "<%d%s" % (len(values), _SCALAR_FMT[elem_gguf_type][1])
            out.append(struct.pack(fmt, *values))
        elif elem_gguf_type == GGUF_TYPE_STRING:
            out.extend(_pack_string(v) for v in values)
        else:
            raise ValueError("unsupported array element type %r" % (elem_gguf_type,))
        self._kv.append((key, b"".join(out)))

    def add_tensor(self, name, shape, ggml_type_id, raw_bytes):
        if name in self._names:
            raise ValueError("duplicate tensor %s" % name)
        raw_bytes = bytes(raw_bytes)
        if ggml_type_id in GGML_TYPE_SIZE:
            want = ggml_nbytes(ggml_type_id, shape)
            if want != len(raw_bytes):
                raise ValueError("tensor %s: %d bytes given, %d expected" %
                                 (name, len(raw_bytes), want))
        self._names.add(name)
        self._tensors.append((name, tuple(int(d) for d in shape), ggml_type_id, raw_bytes))

    def to_bytes(self):
        a = self.alignment
        out = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self._tensors), len(self._kv))]
        for key, enc in self._kv:
            out.append(_pack_string(key))
            out.append(enc)
        offset = 0
        offsets = []
        for name, shape, t, data in self._tensors:
            offsets.append(offset)
            out.append(_pack_string(name))
            out.append(struct.pack("<I", len(shape)))
            out.append(struct.pack("<%dQ" % len(shape), *shape))
            out.append(struct.pack("<IQ", t, offset))
            offset += (len(data) + a - 1) // a * a
        head = b"".join(out)
        pad = (-len(head)) % a
        body = [head, b"\0" * pad]
        for (name, shape, t, data), off in zip(self._tensors, offsets):
            body.append(data)
            body.append(b"\0" * ((-len(data)) % a))
        return b"".join(body)

    def write(self, path):
        data = self.to_bytes()
        with open(path, "wb") as f:
            f.write(data)
