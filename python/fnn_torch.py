"""fnn checkpoints in PyTorch: read, validate and write safetensors files, rebuild the fnn-train network.

fnn saves models as safetensors files named and shaped as PyTorch's nn.Sequential state_dict ("0.weight"
[out, in] F32, "0.bias", "1.running_mean", "1.num_batches_tracked" I64 rank 0, ...). This module moves them
between fnn and torch without the safetensors package (Debian has none): the Python 3 standard library and
torch (1.13 works); numpy is not needed. The file-level functions (read_safetensors, write_safetensors) do not
even need torch.

    import fnn_torch
    model, meta = fnn_torch.sequential_from_checkpoint("runs/fashion-mnist/model.safetensors")
    logits = model(x)                          # eval mode; x [n, 784] float32 pixels / 255
    ...                                        # fine-tune with torch (model.train(), an optimizer, ...)
    fnn_torch.save_state_dict("tuned.safetensors", model.state_dict(), meta)  # fnn::io::load_model reads it

    state, meta = fnn_torch.load_state_dict(path)   # {name: torch.Tensor}, {key: value} of "__metadata__"
    fnn_torch.load_into(module, path)               # strict: every name, dtype and shape must match

Command line (python3 python/fnn_torch.py -h):
    eval CHECKPOINT [--data DIR]    test accuracy of a fnn-train checkpoint, computed by torch
         [--architecture TEXT]      (for a checkpoint without "fnn.architecture" metadata)
    inspect CHECKPOINT              metadata and tensors
    convert IN OUT                  .pt/.pth (torch.save of a state_dict or a module) <-> .safetensors

The format: 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (relative to the data section) plus an optional
"__metadata__" {string: string}, then the data, little-endian, C order. The reader checks what fnn's reader
checks (include/fnn/io/safetensors_read.hpp): the header length against the file and a 100 MB limit, the JSON
(no duplicate keys), known dtypes, shapes, offsets within the data section, dtype size x element count ==
byte length, and that every data byte belongs to exactly one tensor (no overlap, gap or tail). Any defect
raises CheckpointError naming the file and the tensor, offset or size; nothing partial is returned. The writer
pads the header to a multiple of 8 bytes and writes atomically (temporary file, fsync, rename), as fnn does.
"""
import argparse
import collections
import ctypes
import dataclasses
import gzip
import io
import itertools
import json
import math
import os
import re
import struct
import sys

__all__ = [
    "CheckpointError", "RawTensor", "read_safetensors", "write_safetensors", "load_state_dict",
    "save_state_dict", "load_into", "sequential_from_checkpoint", "parse_architecture",
]

# safetensors dtype -> element size in bytes (fnn's table, which is the reference implementation's).
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}
# The reference implementation refuses larger headers; so does fnn, and so do we, before reading one.
MAX_HEADER = 100_000_000
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1


class CheckpointError(ValueError):
    """A checkpoint that is malformed or does not fit the module; the message starts with the file name."""


@dataclasses.dataclass(frozen=True)
class RawTensor:
    """One stored tensor: its little-endian C-order bytes, whatever the dtype."""
    name: str
    dtype: str
    shape: tuple
    data: bytes

    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n


def _error(path, what):
    return CheckpointError(f"{os.fspath(path)}: {what}")


def _fail(path, what):
    raise _error(path, what)


def _shape_text(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------------------------- reading

class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(path, raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error(path, f"header is not UTF-8 (byte offset {8 + e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_reject_constant)
    except _DuplicateKey as e:
        raise _error(path, f"duplicate key \"{e.args[0]}\" in the header") from None
    except json.JSONDecodeError as e:
        at = 8 + len(text[: e.pos].encode("utf-8"))
        raise _error(path, f"{e.msg} at byte offset {at} (in the header)") from None
    except ValueError as e:
        raise _error(path, f"{e} (in the header)") from None


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _u64(path, v, where, limit=_UINT64_MAX):
    if not _is_int(v) or v < 0:
        _fail(path, f"{where} must be a non-negative integer, got {json.dumps(v)}")
    if v > limit:
        _fail(path, f"{where} {v} is too large")
    return v


def _parse_metadata(path, v):
    if not isinstance(v, dict):
        _fail(path, f"\"__metadata__\" must be an object, got {json.dumps(v)}")
    for k, s in v.items():
        if not isinstance(s, str):
            _fail(path, f"\"__metadata__\" value of \"{k}\" must be a string, got {json.dumps(s)}")
    return dict(v)


def _parse_tensor_info(path, name, info, data_size):
    where = f"tensor '{name}' "
    if not isinstance(info, dict):
        _fail(path, f"{where}must be an object, got {json.dumps(info)}")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in info:
            _fail(path, f"{where}has no \"{key}\"")
    dtype = info["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        _fail(path, f"{where}has unknown dtype {json.dumps(dtype)} (known: {', '.join(DTYPE_SIZES)})")
    if not isinstance(info["shape"], list):
        _fail(path, f"{where}shape must be an array")
    shape = tuple(_u64(path, d, where + "shape entry", _INT64_MAX) for d in info["shape"])
    offsets = info["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2:
        _fail(path, f"{where}data_offsets must be [begin, end]")
    begin = _u64(path, offsets[0], where + "data_offsets begin")
    end = _u64(path, offsets[1], where + "data_offsets end")
    span = f"data_offsets [{begin}, {end}]"
    if begin > end or end > data_size:
        _fail(path, f"{where}{span} are out of bounds of the {data_size}-byte data section")
    n = 1
    for d in shape:
        n *= d
    size = DTYPE_SIZES[dtype]
    if n * size != end - begin:
        _fail(path, f"{where}{span} hold {end - begin} bytes, but shape {_shape_text(shape)} of {dtype} "
                    f"needs {n} x {size}")
    return dtype, shape, begin, end


def _check_coverage(path, spans, data_size):
    # Every data byte belongs to exactly one tensor (the reference's rule): an overlap would alias two
    # tensors, a gap or a tail is bytes nobody can account for, which is how a truncated or spliced file looks.
    cursor, previous = 0, "the start of the data section"
    for name, begin, end in sorted(spans, key=lambda s: (s[1], s[2])):
        at = f"tensor '{name}' data_offsets begin at {begin}"
        if begin < cursor:
            _fail(path, f"{at}, overlapping {previous} which ends at {cursor}")
        if begin > cursor:
            _fail(path, f"{at}, leaving a gap after {previous} (data bytes [{cursor}, {begin}) belong to no tensor)")
        cursor, previous = end, f"tensor '{name}'"
    if cursor != data_size:
        _fail(path, f"{data_size - cursor} trailing bytes in the data section belong to no tensor "
                    f"(data bytes [{cursor}, {data_size}))")


def read_safetensors(path):
    """Reads and validates a whole safetensors file: ([RawTensor] in header order, metadata dict)."""
    if os.path.isdir(path):
        _fail(path, "is a directory, expected a file")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise _error(path, f"cannot open for reading: {e.strerror}") from None
    with f:
        file_size = os.fstat(f.fileno()).st_size
        if file_size < 8:
            _fail(path, f"file is {file_size} bytes, shorter than the 8-byte safetensors header length")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > file_size - 8:
            _fail(path, f"header length {n} (bytes 0-7) exceeds the {file_size - 8} bytes that follow")
        if n > MAX_HEADER:
            _fail(path, f"header length {n} exceeds the limit of {MAX_HEADER}")
        header_bytes = f.read(n)
        if len(header_bytes) != n:
            _fail(path, "file shrank while reading the header")
        data_size = file_size - 8 - n
        root = _parse_json(path, header_bytes)
        if not isinstance(root, dict):
            _fail(path, f"header must be a JSON object, got {type(root).__name__}")
        metadata, infos = {}, []
        for name, info in root.items():
            if name == "__metadata__":
                metadata = _parse_metadata(path, info)
            else:
                infos.append((name, *_parse_tensor_info(path, name, info, data_size)))
        _check_coverage(path, [(name, b, e) for name, _, _, b, e in infos], data_size)
        data = f.read(data_size)
        if len(data) != data_size:
            _fail(path, f"cannot read the data section at byte offset {8 + n} (file shrank?)")
    tensors = [RawTensor(name, dtype, shape, data[b:e]) for name, dtype, shape, b, e in infos]
    return tensors, metadata


# ---------------------------------------------------------------------------------------------- writing

def _check_metadata(path, metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        _fail(path, f"metadata must be a dict of strings, got {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            _fail(path, f"metadata {k!r}: {v!r}: keys and values must be strings (safetensors stores only strings)")
    return metadata


def _check_entries(path, tensors):
    seen = set()
    for t in tensors:
        if not isinstance(t.name, str) or t.name in ("", "__metadata__"):
            _fail(path, f"invalid tensor name {t.name!r}")
        if t.name in seen:
            _fail(path, f"duplicate tensor name '{t.name}'")
        seen.add(t.name)
        where = f"tensor '{t.name}': "
        if t.dtype not in DTYPE_SIZES:
            _fail(path, f"{where}unknown dtype {t.dtype!r}")
        if not all(_is_int(d) and 0 <= d <= _INT64_MAX for d in t.shape):
            _fail(path, f"{where}invalid shape {list(t.shape)}")
        if t.numel() * DTYPE_SIZES[t.dtype] != len(t.data):
            _fail(path, f"{where}shape {_shape_text(t.shape)} of {t.dtype} needs {t.numel()} x "
                        f"{DTYPE_SIZES[t.dtype]} bytes, got {len(t.data)}")


def _header(tensors, metadata):
    root, offset = {}, 0
    if metadata:
        root["__metadata__"] = metadata
    for t in tensors:
        root[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(t.data)]}
        offset += len(t.data)
    text = json.dumps(root, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # Padded with spaces, as the reference writer does, so the data section starts 8-byte aligned when mapped.
    return text + b" " * (-len(text) % 8)


_temp_counter = itertools.count()


def _write_atomically(path, chunks):
    """Writes the chunks to a new file next to path, fsyncs it and renames it over path: a crash or a full
    disk never leaves a half-written checkpoint where the previous good one was."""
    path = os.fspath(path)
    fd, tmp = -1, ""
    for _ in range(100):
        tmp = f"{path}.tmp-{os.getpid()}-{next(_temp_counter)}-{int.from_bytes(os.urandom(3), 'little')}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise _error(path, f"cannot create a temporary file {tmp} for writing: {e.strerror}") from None
    if fd < 0:
        _fail(path, f"cannot create a temporary file {tmp} for writing: names exhausted")
    committed = False
    try:
        with os.fdopen(fd, "wb") as f:
            written = 0
            for c in chunks:
                try:
                    f.write(c)
                except OSError as e:
                    raise _error(path, f"write to {tmp} failed at byte offset {written}: {e.strerror}") from None
                written += len(c)
            try:
                f.flush()
                os.fsync(f.fileno())  # before the rename, or a crash can leave the new name on lost data
            except OSError as e:
                raise _error(path, f"fsync of {tmp} failed: {e.strerror}") from None
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise _error(path, f"cannot rename {tmp} over it: {e.strerror}") from None
        committed = True
    finally:
        if not committed:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    try:  # makes the rename itself durable; best effort, the data is safe under one of the two names
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_safetensors(path, tensors, metadata=None):
    """Writes [RawTensor] (in that order) and a {str: str} metadata dict atomically; checks everything first."""
    tensors = list(tensors)
    metadata = _check_metadata(path, metadata)
    _check_entries(path, tensors)
    header = _header(tensors, metadata)
    _write_atomically(path, [struct.pack("<Q", len(header)), header] + [t.data for t in tensors])


# ---------------------------------------------------------------------------------------------- torch

def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"fnn_torch needs torch ({e}); on Debian: apt-get install python3-torch") from e
    return torch


def _torch_dtypes():
    torch = _torch()
    names = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "F16": "float16", "BF16": "bfloat16",
             "I32": "int32", "F32": "float32", "I64": "int64", "F64": "float64",
             # Only in newer torch releases; 1.13 has none of them.
             "U16": "uint16", "U32": "uint32", "U64": "uint64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
    return {k: getattr(torch, v) for k, v in names.items() if isinstance(getattr(torch, v, None), torch.dtype)}


def _little_endian(data, size):
    # safetensors is little-endian; a big-endian host reverses every element on the way in and out.
    if sys.byteorder == "little" or size == 1:
        return data
    b = bytearray(data)
    for i in range(0, len(b), size):
        b[i : i + size] = b[i : i + size][::-1]
    return bytes(b)


def _spec(name, dtype, shape):
    return f"{name} {dtype} {_shape_text(shape)}"


def _dtype_name(t, table):
    for k, v in table.items():
        if v == t.dtype:
            return k
    return str(t.dtype)


def to_torch(raw, path="<memory>"):
    """The torch.Tensor of a RawTensor (owning a copy of the bytes)."""
    torch = _torch()
    table = _torch_dtypes()
    if raw.dtype not in table:
        _fail(path, f"tensor '{raw.name}' has dtype {raw.dtype}, for which torch {torch.__version__} has no type")
    if raw.numel() == 0:
        return torch.empty(raw.shape, dtype=table[raw.dtype])
    data = bytearray(_little_endian(raw.data, DTYPE_SIZES[raw.dtype]))
    return torch.frombuffer(data, dtype=table[raw.dtype]).reshape(raw.shape)


def from_torch(name, tensor, path="<memory>"):
    """The RawTensor of a dense CPU-able torch.Tensor (parameters and buffers alike)."""
    torch = _torch()
    if not isinstance(tensor, torch.Tensor):
        _fail(path, f"tensor '{name}' is a {type(tensor).__name__}, not a torch.Tensor")
    if tensor.layout != torch.strided or tensor.is_quantized:
        _fail(path, f"tensor '{name}' has layout {tensor.layout}, only dense tensors can be stored")
    table = _torch_dtypes()
    dtype = next((k for k, v in table.items() if v == tensor.dtype), None)
    if dtype is None:
        _fail(path, f"tensor '{name}' has torch dtype {tensor.dtype}, which safetensors cannot store")
    t = tensor.detach().cpu().contiguous()
    data = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""
    return RawTensor(name, dtype, tuple(t.shape), _little_endian(data, DTYPE_SIZES[dtype]))


def load_state_dict(path):
    """(OrderedDict name -> torch.Tensor in file order, metadata dict) of a validated safetensors file."""
    raws, metadata = read_safetensors(path)
    return collections.OrderedDict((r.name, to_torch(r, path)) for r in raws), metadata


def save_state_dict(path, state_dict, metadata=None):
    """Writes a state_dict (e.g. module.state_dict()) and {str: str} metadata atomically, in dict order."""
    _check_metadata(path, metadata)
    write_safetensors(path, [from_torch(k, v, path) for k, v in state_dict.items()], metadata)


def _mismatches(path, own, state, table):
    """fnn's check_specs: every missing, unexpected and differing tensor, by name, dtype and shape."""
    def spec(name, t):
        return _spec(name, _dtype_name(t, table), tuple(t.shape))
    missing, differs, unexpected = [], [], []
    for name, t in own.items():
        if name not in state:
            missing.append(f"missing: {spec(name, t)}")
        elif state[name].dtype != t.dtype or tuple(state[name].shape) != tuple(t.shape):
            differs.append(f"differs: expected {spec(name, t)}, found {spec(name, state[name])}")
    unexpected = [f"unexpected: {spec(name, t)}" for name, t in state.items() if name not in own]
    return missing, differs, unexpected


def load_into(module, path, strict=True):
    """Copies the checkpoint into module (any nn.Module) and returns the file's metadata.

    Strict (the default, as fnn::io::load_model): the file holds exactly the module's state_dict tensors with
    their dtypes and shapes; otherwise CheckpointError lists every missing, unexpected and differing tensor and
    the module is left unchanged. strict=False ignores missing and unexpected names; a tensor whose dtype or
    shape differs is always an error (torch would convert dtypes silently; fnn does not).
    """
    state, metadata = load_state_dict(path)
    _copy_into(module, state, path, strict)
    return metadata


def _copy_into(module, state, path, strict):
    own = module.state_dict()
    table = _torch_dtypes()
    missing, differs, unexpected = _mismatches(path, own, state, table)
    problems = missing + differs + unexpected if strict else differs
    if problems:
        def listing(d):
            lines = "".join(f"\n    {_spec(k, _dtype_name(v, table), tuple(v.shape))}" for k, v in d.items())
            return lines or "\n    (none)"
        _fail(path, f"the checkpoint does not match this {type(module).__name__}:"
                    + "".join(f"\n    {p}" for p in problems)
                    + f"\n  expected:{listing(own)}\n  found:{listing(state)}")
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=strict)


# ---------------------------------------------------------------------------------------------- architecture

# fnn layer name -> torch module factory, for the layers without tensors (their kind is only in the metadata).
def _activations(nn):
    return {"relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "tanh": nn.Tanh,
            "sigmoid": nn.Sigmoid, "selu": nn.SELU, "swish": nn.SiLU}


def _split_top_level(text):
    parts, depth, current = [], 0, ""
    for c in text:
        depth += (c == "(") - (c == ")")
        if depth < 0:
            return None
        if c == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += c
    parts.append(current.strip())
    return parts if depth == 0 else None


def parse_architecture(text):
    """Parses fnn-train's "fnn.architecture" metadata into (sizes or None, [layer kind, ...]).

    The form is an optional size chain, then comma-separated layer kinds where "(a, b, c) xN" repeats a group:
    "784-256-256-10 (dense, batch_norm, gelu) x2, dense" -> ([784, 256, 256, 10], [dense, batch_norm, gelu,
    dense, batch_norm, gelu, dense]). A plain "dense, relu, dense" works too.
    """
    def bad(why):
        raise CheckpointError(f"architecture {text!r}: {why}")
    m = re.match(r"\s*(\d+(?:-\d+)+)(?=\s|\(|$)", text)
    sizes = [int(s) for s in m.group(1).split("-")] if m else None
    rest = text[m.end():] if m else text

    def kinds_of(part):
        g = re.fullmatch(r"\((.*)\)\s*x\s*(\d+)", part, re.S)
        if g:
            inner = _split_top_level(g.group(1))
            if inner is None:
                bad(f"unbalanced parentheses in {part!r}")
            return [k for p in inner for k in kinds_of(p)] * int(g.group(2))
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", part):
            bad(f"cannot read {part!r} (expected a layer name such as dense or '(dense, relu) x2')")
        return [part]
    parts = _split_top_level(rest.strip())
    if parts is None:
        bad("unbalanced parentheses")
    kinds = [k for p in parts for k in kinds_of(p)]
    return sizes, kinds


def _layer_options(text):
    """{layer index: {key: value}} from the "fnn.layers" metadata ("dense 784 256; group_norm 256 256 groups=8; ..."):
    the options the architecture text does not carry (group_norm's group count)."""
    out = {}
    for i, entry in enumerate(e for e in (text or "").split(";") if e.strip()):
        opts = {}
        for kv in entry.split()[3:]:
            k, _, v = kv.partition("=")
            opts[k] = v
        out[i] = opts
    return out


def _build_layer(path, i, kind, state, nn, options=None):
    def need(suffix, rank):
        t = state.get(f"{i}.{suffix}")
        if t is None or t.dim() != rank:
            got = "absent" if t is None else f"of shape {_shape_text(tuple(t.shape))}"
            _fail(path, f"layer {i} ({kind}) needs a rank-{rank} tensor '{i}.{suffix}', it is {got}")
        return t
    if kind == "dense":
        w = need("weight", 2)
        return nn.Linear(w.shape[1], w.shape[0], bias=f"{i}.bias" in state)
    if kind == "batch_norm":  # fnn's batch_norm is BatchNorm1d's defaults: eps 1e-5, momentum 0.1
        return nn.BatchNorm1d(need("weight", 1).shape[0])
    if kind == "layer_norm":  # eps 1e-5, as nn.LayerNorm's default
        return nn.LayerNorm(need("weight", 1).shape[0])
    if kind == "group_norm":  # eps 1e-5, as nn.GroupNorm's default; the group count is in "fnn.layers"
        channels = need("weight", 1).shape[0]
        groups = (options or {}).get("groups")
        if groups is None or not groups.isdigit() or int(groups) < 1 or channels % int(groups):
            _fail(path, f"layer {i} (group_norm) needs its group count, a divisor of {channels}: the metadata "
                        f"\"fnn.layers\" entry {i} must say groups=G (fnn's checkpoints do)")
        return nn.GroupNorm(int(groups), channels)
    acts = _activations(nn)
    if kind in acts:
        return acts[kind]()
    _fail(path, f"layer {i}: fnn layer '{kind}' has no torch counterpart here (known: dense, batch_norm, "
                f"layer_norm, group_norm, {', '.join(acts)}); build the nn.Sequential yourself and call load_into(model, path)")


def sequential_from_checkpoint(path, architecture=None):
    """(torch.nn.Sequential in eval mode with the checkpoint loaded, metadata) of a checkpoint whose metadata
    has "fnn.architecture" (fnn-train writes it), or of any checkpoint given the architecture text (see
    parse_architecture). Layer sizes come from the tensors and are checked against the size chain of the
    architecture; loading is strict. Call .train() on the model to fine-tune it."""
    torch = _torch()
    nn = torch.nn
    raws, metadata = read_safetensors(path)
    arch = architecture or metadata.get("fnn.architecture")
    if not arch:
        _fail(path, "no \"fnn.architecture\" in the metadata, so the layers without tensors (activations) are "
                    "unknown; pass the architecture (e.g. '784-256-10 (dense, relu) x1, dense'), or build the "
                    "nn.Sequential yourself and call load_into(model, path)")
    try:
        sizes, kinds = parse_architecture(arch)
    except CheckpointError as e:
        raise _error(path, str(e)) from None
    state = {r.name: to_torch(r, path) for r in raws}
    options = _layer_options(metadata.get("fnn.layers"))
    model = nn.Sequential(*[_build_layer(path, i, k, state, nn, options.get(i)) for i, k in enumerate(kinds)])
    if sizes is not None:
        dense = [m for m in model if isinstance(m, nn.Linear)]
        chain = [dense[0].in_features] + [m.out_features for m in dense] if dense else []
        if chain != sizes:
            _fail(path, f"architecture '{arch}' says sizes {'-'.join(map(str, sizes))}, the dense layers' tensors "
                        f"say {'-'.join(map(str, chain)) or '(no dense layer)'}")
    _copy_into(model, state, path, strict=True)
    return model.eval(), metadata


# ---------------------------------------------------------------------------------------------- command line

def _read_idx(path, magic):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise _error(path, f"cannot read: {e}") from None
    if len(raw) < 4 or struct.unpack(">I", raw[:4])[0] != magic:
        _fail(path, f"not an IDX file with magic 0x{magic:08x}")
    rank = magic & 0xFF
    if len(raw) < 4 + 4 * rank:
        _fail(path, f"file is {len(raw)} bytes, too short for an IDX header of rank {rank}")
    dims = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    n = 1
    for d in dims:
        n *= d
    if len(raw) - 4 - 4 * rank != n:
        _fail(path, f"IDX dimensions {list(dims)} need {n} data bytes, the file has {len(raw) - 4 - 4 * rank}")
    return dims, raw[4 + 4 * rank :]


def _find_split(data_dir, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    _fail(data_dir, f"no {stem} or {stem}.gz (Fashion-MNIST: apt-get install dataset-fashion-mnist)")


def evaluate(model, images, labels, batch=1000):
    """(correct count, mean cross-entropy) of model on float images [n, f] and int64 labels [n], eval mode."""
    torch = _torch()
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for b in range(0, len(labels), batch):
            logits = model(images[b : b + batch])
            y = labels[b : b + batch]
            correct += int((logits.argmax(dim=1) == y).sum())
            loss += float(torch.nn.functional.cross_entropy(logits.double(), y, reduction="sum"))
    return correct, loss / max(len(labels), 1)


def standardization(path, metadata):
    """(mean, std) float32 tensors of an fnn-train --standardize checkpoint, or None.

    fnn-train keeps them in the model's metadata ("fnn.standardize.mean" / ".std", comma-separated, exact as
    %.9g); earlier versions wrote a side file named by "standardize", read only as a plain file name in the
    checkpoint's directory (as fnn-eval does).
    """
    torch = _torch()
    keys = ("fnn.standardize.mean", "fnn.standardize.std")
    if any(k in metadata for k in keys):
        out = []
        for k in keys:
            if k not in metadata:
                _fail(path, f"__metadata__ has {keys[0] if k == keys[1] else keys[1]} but not {k}")
            try:
                values = [float(v) for v in metadata[k].split(",")]
            except ValueError:
                _fail(path, f"__metadata__ \"{k}\" is not a comma-separated list of numbers")
            if not all(math.isfinite(v) for v in values) or (k.endswith("std") and not all(v > 0 for v in values)):
                _fail(path, f"__metadata__ \"{k}\" holds a non-finite{' or non-positive' if k.endswith('std') else ''} value")
            out.append(torch.tensor(values, dtype=torch.float32))
        if out[0].numel() != out[1].numel():
            _fail(path, f"standardization mean has {out[0].numel()} values, std {out[1].numel()}")
        return tuple(out)
    name = metadata.get("standardize", "")
    if not name:
        return None
    if "/" in name or name in (".", ".."):
        _fail(path, f"__metadata__ \"standardize\" must be a file name in the checkpoint's directory, got \"{name}\"")
    side = os.path.join(os.path.dirname(path), name)
    if not os.path.isfile(side) or os.path.islink(side):
        _fail(side, "named as standardization statistics, but it is missing or not a regular file")
    stats, _ = load_state_dict(side)
    return stats["mean"], stats["std"]


def _cmd_eval(args):
    torch = _torch()
    model, metadata = sequential_from_checkpoint(args.checkpoint, args.architecture)
    dims, pixels = _read_idx(_find_split(args.data, "t10k-images-idx3-ubyte"), 0x803)
    ldims, label_bytes = _read_idx(_find_split(args.data, "t10k-labels-idx1-ubyte"), 0x801)
    if ldims[0] != dims[0]:
        _fail(args.data, f"{dims[0]} test images but {ldims[0]} labels")
    features = dims[1] * dims[2]
    first = next(m for m in model if isinstance(m, torch.nn.Linear))
    if features != first.in_features:
        _fail(args.data, f"images are {dims[1]}x{dims[2]}, the network expects {first.in_features} inputs")
    # pixel / 255 in float32, as fnn::io::pixels_to_float computes it.
    x = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(dims[0], features).float() / 255
    y = torch.frombuffer(bytearray(label_bytes), dtype=torch.uint8).long()
    stats = standardization(args.checkpoint, metadata)
    if stats is not None:
        x = (x - stats[0]) / stats[1]
    correct, loss = evaluate(model, x, y)
    print(f"test accuracy {correct / max(len(y), 1):.4f}  test loss {loss:.6f}  ({correct}/{len(y)} correct, "
          f"{args.checkpoint}, torch {torch.__version__})")
    return 0


def _cmd_inspect(args):
    raws, metadata = read_safetensors(args.checkpoint)
    for k, v in metadata.items():
        print(f"metadata {k} = {v}")
    for r in raws:
        print(_spec(r.name, r.dtype, r.shape))
    print(f"{len(raws)} tensors, {sum(r.numel() for r in raws)} elements")
    return 0


def _is_safetensors(p):
    return p.endswith(".safetensors")


def _cmd_convert(args):
    torch = _torch()
    extra = {}
    for kv in args.metadata:
        if "=" not in kv:
            raise CheckpointError(f"--metadata {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        extra[k] = v
    if _is_safetensors(args.input):
        state, metadata = load_state_dict(args.input)
    else:
        obj = torch.load(args.input, map_location="cpu")
        if isinstance(obj, torch.nn.Module):
            obj = obj.state_dict()
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            _fail(args.input, "holds neither a state_dict, nor a module, nor {'state_dict': ...}")
        state, metadata = obj, {}
    metadata = {**metadata, **extra}
    if _is_safetensors(args.output):
        save_state_dict(args.output, state, metadata)
    else:
        buffer = io.BytesIO()
        torch.save(collections.OrderedDict(state), buffer)  # a plain state_dict, what load_state_dict takes
        _write_atomically(args.output, [buffer.getvalue()])
        if metadata:
            print(f"note: {args.output} is a plain state_dict; the metadata ({', '.join(metadata)}) is not kept",
                  file=sys.stderr)
    print(f"{args.input} -> {args.output}: {len(state)} tensors")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fnn_torch", description="fnn checkpoints (safetensors) in PyTorch")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("eval", help="test accuracy of a fnn-train checkpoint, computed by torch")
    p.add_argument("checkpoint")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]")
    p.add_argument("--architecture", help="for checkpoints without \"fnn.architecture\" metadata, e.g. "
                                          "'784-256-256-10 (dense, batch_norm, gelu) x2, dense' (fnn-train's)")
    p.set_defaults(run=_cmd_eval)
    p = sub.add_parser("inspect", help="metadata and tensors of a safetensors file")
    p.add_argument("checkpoint")
    p.set_defaults(run=_cmd_inspect)
    p = sub.add_parser("convert", help=".pt/.pth <-> .safetensors (by file extension)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                   help="add to the metadata, e.g. 'fnn.architecture=784-256-10 (dense, relu) x1, dense'")
    p.set_defaults(run=_cmd_convert)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CheckpointError as e:
        print(f"fnn_torch: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
