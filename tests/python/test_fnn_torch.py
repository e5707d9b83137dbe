"""Tests of python/fnn_torch.py (run with Debian's /usr/bin/python3).

    test_fnn_torch.py FormatTests   the safetensors reader and writer; needs no torch
    test_fnn_torch.py TorchTests    state_dicts, load_into, sequential_from_checkpoint, the command line;
                                    exits 77 (CTest's skip) when torch cannot be imported

The round trips against fnn itself (fnn writes, torch computes the same logits, torch writes, fnn agrees) are
in tests/unit/train/interop_tests.cpp, which drives tests/unit/train/torch_interop.py.
"""
import gzip
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(ROOT, "python", "fnn_torch.py")
sys.path.insert(0, os.path.dirname(MODULE))
import fnn_torch  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:
    torch = None

SKIP = 77


def encode(header, data=b"", length=None, pad=True):
    """A safetensors file by hand: header is a dict (dumped as JSON) or raw bytes."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


class TempDir:
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="fnn_torch_test_")
        self.dir = self._dir.name

    def tearDown(self):
        self._dir.cleanup()

    def file(self, name, content):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(content)
        return path


class FormatTests(TempDir, unittest.TestCase):
    def assert_rejected(self, content, *fragments):
        path = self.file("bad.safetensors", content)
        with self.assertRaises(fnn_torch.CheckpointError) as cm:
            fnn_torch.read_safetensors(path)
        message = str(cm.exception)
        self.assertTrue(message.startswith(path + ": "), message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def two_tensors(self, a, b, data_len=16):
        return encode({"a": {"dtype": "F32", "shape": [2], "data_offsets": a},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": b}}, bytes(data_len))

    def test_reads_tensors_metadata_and_header_order(self):
        path = self.file("ok.safetensors", encode(
            {"__metadata__": {"epoch": "3"}, "z": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "a": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]}}, f32(1.5, -2) + struct.pack("<q", -7)))
        tensors, metadata = fnn_torch.read_safetensors(path)
        self.assertEqual(metadata, {"epoch": "3"})
        self.assertEqual([(t.name, t.dtype, t.shape) for t in tensors], [("z", "F32", (2,)), ("a", "I64", ())])
        self.assertEqual(struct.unpack("<2f", tensors[0].data), (1.5, -2.0))
        self.assertEqual(struct.unpack("<q", tensors[1].data), (-7,))

    def test_accepts_unpadded_headers_and_empty_tensors(self):
        path = self.file("ok.safetensors", encode({"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
                                                   "x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}},
                                                  b"\x07", pad=False))
        tensors, metadata = fnn_torch.read_safetensors(path)
        self.assertEqual(metadata, {})
        self.assertEqual([(t.name, t.shape, t.data) for t in tensors], [("e", (0, 3), b""), ("x", (1,), b"\x07")])

    def test_file_shorter_than_the_length_field(self):
        self.assert_rejected(b"\x10\x00\x00", "file is 3 bytes, shorter than the 8-byte safetensors header length")

    def test_truncated_header(self):
        good = self.two_tensors([0, 8], [8, 16])
        self.assert_rejected(good[:40], "header length", "(bytes 0-7) exceeds the 32 bytes that follow")

    def test_truncated_data(self):
        good = self.two_tensors([0, 8], [8, 16])
        self.assert_rejected(good[:-3], "tensor 'b' data_offsets [8, 16] are out of bounds of the 13-byte data section")

    def test_header_length_limit(self):
        # A sparse file just over the limit: the length fits in the file, the limit still refuses it.
        path = os.path.join(self.dir, "huge.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", fnn_torch.MAX_HEADER + 8))
            f.truncate(fnn_torch.MAX_HEADER + 16)
        with self.assertRaisesRegex(fnn_torch.CheckpointError,
                                    r"header length 100000008 exceeds the limit of 100000000"):
            fnn_torch.read_safetensors(path)

    def test_overlapping_offsets(self):
        self.assert_rejected(self.two_tensors([0, 8], [4, 12], 12),
                             "tensor 'b' data_offsets begin at 4, overlapping tensor 'a' which ends at 8")

    def test_gap_and_trailing_bytes(self):
        self.assert_rejected(self.two_tensors([0, 8], [12, 20], 20),
                             "tensor 'b' data_offsets begin at 12, leaving a gap after tensor 'a'",
                             "data bytes [8, 12) belong to no tensor")
        self.assert_rejected(self.two_tensors([0, 8], [8, 16], 19),
                             "3 trailing bytes in the data section belong to no tensor (data bytes [16, 19))")

    def test_unknown_dtype(self):
        self.assert_rejected(encode({"w": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
                             "tensor 'w' has unknown dtype \"F33\"", "known: BOOL, U8")

    def test_dtype_size_times_shape_must_be_the_byte_length(self):
        self.assert_rejected(encode({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
                             "tensor 'w' data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 3 x 4")
        self.assert_rejected(encode({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 4]}}, bytes(4)),
                             "shape [2, 2] of BF16 needs 4 x 2")

    def test_bad_shapes_and_offsets(self):
        def one(info, data=bytes(4)):
            return encode({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], **info}}, data)
        self.assert_rejected(one({"shape": [-1]}), "tensor 'w' shape entry must be a non-negative integer, got -1")
        self.assert_rejected(one({"shape": [True]}), "shape entry must be a non-negative integer, got true")
        self.assert_rejected(one({"shape": 4}), "tensor 'w' shape must be an array")
        self.assert_rejected(one({"data_offsets": [0.0, 4]}), "data_offsets begin must be a non-negative integer")
        self.assert_rejected(one({"data_offsets": [0]}), "tensor 'w' data_offsets must be [begin, end]")
        self.assert_rejected(one({"data_offsets": [4, 0]}), "data_offsets [4, 0] are out of bounds")
        self.assert_rejected(encode({"w": {"dtype": "F32", "shape": [1]}}, bytes(4)),
                             "tensor 'w' has no \"data_offsets\"")
        self.assert_rejected(encode({"w": [1, 2]}), "tensor 'w' must be an object")

    def test_bad_json_and_metadata(self):
        self.assert_rejected(encode(b'{"a": 1,, }'), "at byte offset 16 (in the header)")
        self.assert_rejected(encode(b'{"a": NaN}'), "NaN is not valid JSON")
        self.assert_rejected(encode(b'[1, 2]'), "header must be a JSON object, got list")
        self.assert_rejected(encode(b'{"\xff": 1}'), "header is not UTF-8 (byte offset 10)")
        dup = b'{"w": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}, "w": {}}'
        self.assert_rejected(encode(dup, bytes(4)), "duplicate key \"w\" in the header")
        self.assert_rejected(encode({"__metadata__": {"epoch": 3}}),
                             "\"__metadata__\" value of \"epoch\" must be a string")
        self.assert_rejected(encode({"__metadata__": ["x"]}), "\"__metadata__\" must be an object")

    def test_missing_file_and_directory(self):
        with self.assertRaisesRegex(fnn_torch.CheckpointError, "nope.safetensors: cannot open for reading"):
            fnn_torch.read_safetensors(os.path.join(self.dir, "nope.safetensors"))
        with self.assertRaisesRegex(fnn_torch.CheckpointError, "is a directory, expected a file"):
            fnn_torch.read_safetensors(self.dir)

    def test_write_then_read_every_dtype(self):
        raws = [fnn_torch.RawTensor(f"t{d}", d, (2, 1), bytes(range(s * 2))) for d, s in fnn_torch.DTYPE_SIZES.items()]
        raws.append(fnn_torch.RawTensor("scalar", "F64", (), struct.pack("<d", math.pi)))
        path = os.path.join(self.dir, "all.safetensors")
        fnn_torch.write_safetensors(path, raws, {"format": "pt", "note": "ünïcode"})
        tensors, metadata = fnn_torch.read_safetensors(path)
        self.assertEqual(tensors, raws)
        self.assertEqual(metadata, {"format": "pt", "note": "ünïcode"})
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        self.assertEqual(n % 8, 0, "the header is padded so the data section is 8-byte aligned")

    def test_writer_checks_before_writing_and_keeps_the_old_file(self):
        path = self.file("keep.safetensors", b"old contents")
        cases = [
            ([fnn_torch.RawTensor("w", "F32", (3,), bytes(8))], None,
             "tensor 'w': shape [3] of F32 needs 3 x 4 bytes, got 8"),
            ([fnn_torch.RawTensor("w", "F31", (1,), bytes(4))], None, "tensor 'w': unknown dtype 'F31'"),
            ([fnn_torch.RawTensor("w", "U8", (1,), b"1")] * 2, None, "duplicate tensor name 'w'"),
            ([fnn_torch.RawTensor("__metadata__", "U8", (1,), b"1")], None, "invalid tensor name '__metadata__'"),
            ([], {"epoch": 3}, "metadata 'epoch': 3: keys and values must be strings"),
        ]
        for tensors, metadata, message in cases:
            with self.assertRaises(fnn_torch.CheckpointError) as cm:
                fnn_torch.write_safetensors(path, tensors, metadata)
            self.assertIn(message, str(cm.exception))
            self.assertTrue(str(cm.exception).startswith(path + ": "))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"old contents")
        self.assertEqual(os.listdir(self.dir), ["keep.safetensors"])

    def test_a_failure_while_writing_leaves_no_temporary_file_and_the_old_file(self):
        path = self.file("keep.safetensors", b"old contents")

        def chunks():
            yield b"new"
            raise RuntimeError("disk on fire")
        with self.assertRaisesRegex(RuntimeError, "disk on fire"):
            fnn_torch._write_atomically(path, chunks())
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"old contents")
        self.assertEqual(os.listdir(self.dir), ["keep.safetensors"])
        fnn_torch._write_atomically(path, [b"new ", b"contents"])
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"new contents")
        self.assertEqual(os.listdir(self.dir), ["keep.safetensors"])

    def test_parse_architecture(self):
        self.assertEqual(fnn_torch.parse_architecture("784-256-256-10 (dense, batch_norm, gelu) x2, dense"),
                         ([784, 256, 256, 10], ["dense", "batch_norm", "gelu"] * 2 + ["dense"]))
        self.assertEqual(fnn_torch.parse_architecture("dense, relu, dense"), (None, ["dense", "relu", "dense"]))
        self.assertEqual(fnn_torch.parse_architecture("8-4 ((dense, tanh) x2, dense) x1"),
                         ([8, 4], ["dense", "tanh", "dense", "tanh", "dense"]))
        for bad, message in [("784-10 (dense, relu x2", "unbalanced parentheses"),
                             ("784-10 dense; relu", "cannot read 'dense; relu'")]:
            with self.assertRaisesRegex(fnn_torch.CheckpointError, message):
                fnn_torch.parse_architecture(bad)


def fnn_train_model(hidden=16, classes=10, features=784):
    """The shape of fnn-train's network (smaller), with batch-norm state that is not the initial one."""
    torch.manual_seed(7)
    m = nn.Sequential(nn.Linear(features, hidden), nn.BatchNorm1d(hidden), nn.GELU(),
                      nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.GELU(), nn.Linear(hidden, classes))
    with torch.no_grad():
        for bn in (m[1], m[4]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(11)
    return m.eval()


def architecture(hidden=16, classes=10, features=784):
    return f"{features}-{hidden}-{hidden}-{classes} (dense, batch_norm, gelu) x2, dense"


@unittest.skipIf(torch is None, "torch cannot be imported (apt-get install python3-torch)")
class TorchTests(TempDir, unittest.TestCase):
    def path(self, name):
        return os.path.join(self.dir, name)

    def test_state_dict_round_trip_is_bit_exact_for_every_torch_dtype(self):
        state = {
            "f32": torch.tensor([[0.1, -0.0, 1e-45], [float("inf"), 65504.0, -3.5]], dtype=torch.float32),
            "f64": torch.arange(5, dtype=torch.float64) / 3,
            "bf16": torch.tensor([1.0, -2.0, 0.1], dtype=torch.bfloat16),
            "f16": torch.tensor([1.0, -2.0, 0.1], dtype=torch.float16),
            "i64": torch.tensor(2**40 + 1, dtype=torch.int64),
            "i32": torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
            "i16": torch.tensor([-5, 300], dtype=torch.int16),
            "i8": torch.tensor([-128, 127], dtype=torch.int8),
            "u8": torch.tensor([0, 255], dtype=torch.uint8),
            "bool": torch.tensor([True, False, True]),
            "empty": torch.empty(0, 3),
            "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),  # stored in its C order
            "param": nn.Parameter(torch.ones(2)),
        }
        fnn_torch.save_state_dict(self.path("s.safetensors"), state, {"format": "pt"})
        got, meta = fnn_torch.load_state_dict(self.path("s.safetensors"))
        self.assertEqual(meta, {"format": "pt"})
        self.assertEqual(list(got), list(state))
        for k, v in state.items():
            self.assertEqual(got[k].dtype, v.dtype, k)
            self.assertEqual(got[k].shape, v.shape, k)
            self.assertTrue(torch.equal(got[k], v.detach()), k)
        self.assertTrue(torch.equal(torch.signbit(got["f32"]), torch.signbit(state["f32"])))
        raws, _ = fnn_torch.read_safetensors(self.path("s.safetensors"))
        by_name = {r.name: r for r in raws}
        self.assertEqual((by_name["bf16"].dtype, by_name["bf16"].data[:2]), ("BF16", b"\x80\x3f"))
        self.assertEqual(by_name["transposed"].data, f32(0, 3, 1, 4, 2, 5))

    def test_unstorable_tensors_are_refused_by_name(self):
        with self.assertRaisesRegex(fnn_torch.CheckpointError, r"tensor 'c' has torch dtype torch.complex64"):
            fnn_torch.save_state_dict(self.path("c.safetensors"), {"c": torch.zeros(2, dtype=torch.complex64)})
        with self.assertRaisesRegex(fnn_torch.CheckpointError, r"tensor 'n' is a list, not a torch.Tensor"):
            fnn_torch.save_state_dict(self.path("c.safetensors"), {"n": [1.0]})
        self.assertFalse(os.listdir(self.dir))
        if not hasattr(torch, "uint16"):  # torch 1.13: a valid file whose dtype torch cannot hold
            fnn_torch.write_safetensors(self.path("u16.safetensors"), [fnn_torch.RawTensor("h", "U16", (1,), b"\1\0")])
            with self.assertRaisesRegex(fnn_torch.CheckpointError,
                                        r"u16.safetensors: tensor 'h' has dtype U16, for which torch"):
                fnn_torch.load_state_dict(self.path("u16.safetensors"))

    def test_load_into_is_strict_and_names_every_difference(self):
        m = fnn_train_model()
        fnn_torch.save_state_dict(self.path("m.safetensors"), m.state_dict())
        other = nn.Sequential(nn.Linear(784, 32), nn.BatchNorm1d(16), nn.GELU(), nn.Linear(16, 16).double())
        before = {k: v.clone() for k, v in other.state_dict().items()}
        with self.assertRaises(fnn_torch.CheckpointError) as cm:
            fnn_torch.load_into(other, self.path("m.safetensors"))
        message = str(cm.exception)
        self.assertTrue(message.startswith(self.path("m.safetensors") +
                                           ": the checkpoint does not match this Sequential:"), message)
        for line in ["differs: expected 0.weight F32 [32, 784], found 0.weight F32 [16, 784]",
                     "differs: expected 0.bias F32 [32], found 0.bias F32 [16]",
                     "differs: expected 3.weight F64 [16, 16], found 3.weight F32 [16, 16]",
                     "unexpected: 4.running_mean F32 [16]", "unexpected: 4.num_batches_tracked I64 []",
                     "unexpected: 6.weight F32 [10, 16]"]:
            self.assertIn("\n    " + line + "\n", message)
        self.assertNotIn("missing:", message)
        for k, v in other.state_dict().items():
            self.assertTrue(torch.equal(v, before[k]), f"{k} changed by a failed load")
        # A missing tensor, and strict=False ignoring it (but not a shape difference).
        fewer = nn.Sequential(*fnn_train_model(), nn.BatchNorm1d(10))
        with self.assertRaisesRegex(fnn_torch.CheckpointError, r"\n    missing: 7.running_var F32 \[10\]\n"):
            fnn_torch.load_into(fewer, self.path("m.safetensors"))
        fnn_torch.load_into(fewer, self.path("m.safetensors"), strict=False)
        self.assertTrue(torch.equal(fewer[0].weight, m[0].weight))
        with self.assertRaisesRegex(fnn_torch.CheckpointError, r"differs: expected 0.weight F32 \[32, 784\]"):
            fnn_torch.load_into(other, self.path("m.safetensors"), strict=False)

    def test_sequential_from_checkpoint_rebuilds_the_fnn_train_network(self):
        m = fnn_train_model()
        fnn_torch.save_state_dict(self.path("m.safetensors"), m.state_dict(),
                                  {"fnn.architecture": architecture(), "epoch": "2"})
        built, meta = fnn_torch.sequential_from_checkpoint(self.path("m.safetensors"))
        self.assertEqual(meta["epoch"], "2")
        self.assertFalse(built.training)
        self.assertEqual([type(x).__name__ for x in built], [type(x).__name__ for x in m])
        self.assertEqual(int(built[4].num_batches_tracked), 11)
        x = torch.rand(9, 784)
        with torch.no_grad():
            self.assertTrue(torch.equal(built(x), m(x)))
        # A plain torch state_dict (no metadata) with the architecture given.
        fnn_torch.save_state_dict(self.path("plain.safetensors"), m.state_dict())
        built, meta = fnn_torch.sequential_from_checkpoint(self.path("plain.safetensors"), architecture())
        self.assertEqual(meta, {})
        with torch.no_grad():
            self.assertTrue(torch.equal(built(x), m(x)))

    def test_sequential_from_checkpoint_knows_the_activations(self):
        for kind, cls in [("relu", nn.ReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("swish", nn.SiLU)]:
            m = nn.Sequential(nn.Linear(6, 4), cls(), nn.Linear(4, 3), nn.LayerNorm(3))
            fnn_torch.save_state_dict(self.path("a.safetensors"), m.state_dict(),
                                      {"fnn.architecture": f"6-4-3 (dense, {kind}) x1, dense, layer_norm"})
            built, _ = fnn_torch.sequential_from_checkpoint(self.path("a.safetensors"))
            self.assertIsInstance(built[1], cls)
            x = torch.randn(5, 6)
            with torch.no_grad():
                self.assertTrue(torch.equal(built(x), m(x)), kind)
        m = nn.Sequential(nn.Linear(6, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 3))
        fnn_torch.save_state_dict(self.path("g.safetensors"), m.state_dict(),
                                  {"fnn.architecture": "dense, gelu_tanh, dense"})
        self.assertEqual(fnn_torch.sequential_from_checkpoint(self.path("g.safetensors"))[0][1].approximate, "tanh")

    def test_sequential_from_checkpoint_builds_group_norm_from_fnn_layers(self):
        m = nn.Sequential(nn.Linear(6, 12), nn.GroupNorm(3, 12), nn.GELU(), nn.Linear(12, 3))
        with torch.no_grad():
            m[1].weight.uniform_(0.5, 1.5)
            m[1].bias.uniform_(-0.5, 0.5)
        meta = {"fnn.architecture": "6-12-3 (dense, group_norm, gelu) x1, dense",
                "fnn.layers": "dense 6 12; group_norm 12 12 groups=3; gelu 12 12; dense 12 3"}
        fnn_torch.save_state_dict(self.path("gn.safetensors"), m.state_dict(), meta)
        built, _ = fnn_torch.sequential_from_checkpoint(self.path("gn.safetensors"))
        self.assertIsInstance(built[1], nn.GroupNorm)
        self.assertEqual(built[1].num_groups, 3)
        x = torch.randn(5, 6)
        with torch.no_grad():
            self.assertTrue(torch.equal(built(x), m(x)))
        del meta["fnn.layers"]
        fnn_torch.save_state_dict(self.path("gn2.safetensors"), m.state_dict(), meta)
        with self.assertRaisesRegex(fnn_torch.CheckpointError, "group_norm\\) needs its group count"):
            fnn_torch.sequential_from_checkpoint(self.path("gn2.safetensors"))

    def test_sequential_from_checkpoint_errors(self):
        m = fnn_train_model()
        p = self.path("m.safetensors")
        cases = [
            ({}, "no \"fnn.architecture\" in the metadata"),
            ({"fnn.architecture": architecture(hidden=32)},
             "architecture '784-32-32-10 (dense, batch_norm, gelu) x2, dense' says sizes 784-32-32-10, "
             "the dense layers' tensors say 784-16-16-10"),
            ({"fnn.architecture": "784-16-16-10 (dense, batch_norm, mish) x2, dense"},
             "layer 2: fnn layer 'mish' has no"),
            ({"fnn.architecture": "784-16-16-10 (dense, gelu, batch_norm) x2, dense"},
             "layer 2 (batch_norm) needs a rank-1 tensor '2.weight', it is absent"),
            ({"fnn.architecture": "784-16-16 (dense, batch_norm, gelu) x2"}, "unexpected: 6.weight F32 [10, 16]"),
            ({"fnn.architecture": "784-16 (dense, batch_norm, gelu) x2, dense (x"}, "architecture '784-16 (dense"),
        ]
        for metadata, message in cases:
            fnn_torch.save_state_dict(p, m.state_dict(), metadata)
            with self.assertRaises(fnn_torch.CheckpointError) as cm:
                fnn_torch.sequential_from_checkpoint(p)
            self.assertIn(message, str(cm.exception))
            self.assertTrue(str(cm.exception).startswith(p + ": "), str(cm.exception))

    def run_cli(self, *args):
        r = subprocess.run([sys.executable, MODULE, *args], capture_output=True, text=True)
        return r.returncode, r.stdout, r.stderr

    @staticmethod
    def loss_of(out):
        return float(out.split("test loss ")[1].split()[0])

    def write_idx(self, directory, images, labels, gz):
        os.makedirs(directory, exist_ok=True)
        n = images.shape[0]
        opener = gzip.open if gz else open
        suffix = ".gz" if gz else ""
        with opener(os.path.join(directory, "t10k-images-idx3-ubyte" + suffix), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(images.reshape(-1).tolist()))
        with opener(os.path.join(directory, "t10k-labels-idx1-ubyte" + suffix), "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + bytes(labels.tolist()))

    def test_eval_command_counts_what_the_model_predicts(self):
        torch.manual_seed(3)
        m = fnn_train_model()
        images = torch.randint(0, 256, (300, 784), dtype=torch.uint8)
        x = images.float() / 255
        with torch.no_grad():
            predicted = m(x).argmax(dim=1)
        labels = predicted.clone()
        labels[:37] = (labels[:37] + 1) % 10  # 263 of 300 right, whatever the model
        data = os.path.join(self.dir, "data")
        self.write_idx(data, images, labels, gz=True)
        fnn_torch.save_state_dict(self.path("m.safetensors"), m.state_dict(), {"fnn.architecture": architecture()})
        fnn_torch.save_state_dict(self.path("plain.safetensors"), m.state_dict())
        rc, out, err = self.run_cli("eval", self.path("plain.safetensors"), "--data", data)
        self.assertEqual(rc, 1)
        self.assertIn("no \"fnn.architecture\" in the metadata", err)
        rc, out, err = self.run_cli("eval", self.path("plain.safetensors"), "--data", data,
                                    "--architecture", architecture())
        self.assertEqual(rc, 0, err)
        self.assertIn("(263/300 correct", out)
        rc, out, err = self.run_cli("eval", self.path("m.safetensors"), "--data", data)
        self.assertEqual(rc, 0, err)
        self.assertIn("test accuracy 0.8767", out)
        self.assertIn("(263/300 correct", out)
        self.assertAlmostEqual(self.loss_of(out), float(nn.functional.cross_entropy(m(x), labels)), places=5)
        # --standardize checkpoints: the statistics file named in the metadata is applied first.
        mean, std = torch.rand(784) * 0.5, torch.rand(784) + 0.5
        with torch.no_grad():
            labels = m((x - mean) / std).argmax(dim=1)
        labels[:10] = (labels[:10] + 3) % 10
        self.write_idx(data, images, labels, gz=False)
        for name in os.listdir(data):
            if name.endswith(".gz"):
                os.unlink(os.path.join(data, name))
        fnn_torch.save_state_dict(self.path("standardize.safetensors"), {"mean": mean, "std": std})
        fnn_torch.save_state_dict(self.path("m.safetensors"), m.state_dict(),
                                  {"fnn.architecture": architecture(), "standardize": "standardize.safetensors"})
        rc, out, err = self.run_cli("eval", self.path("m.safetensors"), "--data", data)
        self.assertEqual(rc, 0, err)
        self.assertIn("(290/300 correct", out)
        with torch.no_grad():
            self.assertAlmostEqual(self.loss_of(out), float(nn.functional.cross_entropy(m((x - mean) / std), labels)),
                                   places=5)
            self.assertGreater(abs(self.loss_of(out) - float(nn.functional.cross_entropy(m(x), labels))), 1e-3,
                               "the standardization must matter to this test")

    def test_eval_command_errors_name_the_file(self):
        p = self.file("bad.safetensors", b"\1\2")
        rc, out, err = self.run_cli("eval", p, "--data", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn(f"fnn_torch: {p}: file is 2 bytes", err)
        fnn_torch.save_state_dict(self.path("m.safetensors"), fnn_train_model().state_dict(),
                                  {"fnn.architecture": architecture()})
        rc, out, err = self.run_cli("eval", self.path("m.safetensors"), "--data", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn("no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz", err)

    def test_convert_between_pt_and_safetensors(self):
        m = fnn_train_model()
        torch.save(m, self.path("model.pt"))  # a whole module, as people do
        rc, out, err = self.run_cli("convert", self.path("model.pt"), self.path("model.safetensors"),
                                    "--metadata", "fnn.architecture=" + architecture())
        self.assertEqual(rc, 0, err)
        built, meta = fnn_torch.sequential_from_checkpoint(self.path("model.safetensors"))
        self.assertEqual(meta, {"fnn.architecture": architecture()})
        for k, v in m.state_dict().items():
            self.assertTrue(torch.equal(built.state_dict()[k], v), k)
        rc, out, err = self.run_cli("convert", self.path("model.safetensors"), self.path("back.pth"))
        self.assertEqual(rc, 0, err)
        back = torch.load(self.path("back.pth"))
        self.assertEqual(list(back), list(m.state_dict()))
        self.assertTrue(all(torch.equal(back[k], v) for k, v in m.state_dict().items()))
        torch.save([1, 2], self.path("list.pt"))
        rc, out, err = self.run_cli("convert", self.path("list.pt"), self.path("x.safetensors"))
        self.assertEqual(rc, 1)
        self.assertIn("list.pt: holds neither a state_dict", err)


if __name__ == "__main__":
    names = sys.argv[1:] or ["FormatTests", "TorchTests"]
    if "TorchTests" in names and torch is None:
        print("SKIPPED TorchTests: /usr/bin/python3 cannot import torch (apt-get install python3-torch)")
        names.remove("TorchTests")
        if not names:
            sys.exit(SKIP)
    suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromName(n, sys.modules[__name__]) for n in names)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
