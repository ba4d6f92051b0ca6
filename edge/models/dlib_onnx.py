"""dlib's face-recognition ResNet as ONNX: the same network and weights, 18x cheaper here.

Why: dlib computes the 128-D descriptor with its own matrix code (the registry's dlib has
no BLAS): about 78 ms of CPU a face on this machine, most of a frame's work on one core.
ONNX Runtime runs the same network in about 4 ms, and a Jetson can build a TensorRT
engine from it. The descriptors are dlib's to within 1e-6, so the identity threshold and
every enrolled template stay valid; ``edge models prepare`` checks this against dlib itself
before it writes the file (``check_against_dlib``).

How: dlib serialises a network layer by layer, from the input up, each layer's record
starting with its name and version (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``,
``avg_pool_2``, ``add_prev_``, ``fc_2``); a layer's parameters are one tensor of
little-endian float32 after a header of dlib's variable-length integers. The residual
structure is the one dlib's example defines (``dnn_face_recognition_ex.cpp``): each block
is conv-affine-relu-conv-affine added to the block's input; a downsampling block also
average-pools that input 2x2 (the ``avg_pool`` record inside the block) and dlib's add
pads the smaller operand with zeros (channels, and rows and columns at the bottom right).
Only what this network uses is read; anything else is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.core.errors import ModelError
from edge.vision.align import CHIP_SIZE
from edge.vision.identity import DESCRIPTOR_DIM, FaceEncoder

INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
INPUT_LAYER = "input_rgb_image_sized"
_LAYER_NAMES = re.compile(rb"con_4|affine_|relu_|max_pool_2|avg_pool_2|add_prev_|fc_2")
_PREPARE_AGAIN = "run `edge models prepare --force`"


class _Reader:
    """dlib's serialisation: integers as a length byte (sign in bit 7) and little-endian
    bytes, strings as a length and bytes, floats as mantissa and exponent integers,
    tensors as a version, four dimensions and raw float32."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def integer(self) -> int:
        head = self.data[self.position]
        size = head & 0x0F
        start = self.position + 1
        value = int.from_bytes(self.data[start:start + size], "little")
        self.position = start + size
        return -value if head & 0x80 else value

    def text(self) -> str:
        size = self.integer()
        value = self.data[self.position:self.position + size].decode("ascii")
        self.position += size
        return value

    def real(self) -> float:
        mantissa = self.integer()
        return mantissa * 2.0 ** self.integer()

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise ValueError("unknown tensor version")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.position).astype(np.float32)
        self.position += 4 * count
        return values.reshape(shape)


@dataclass(frozen=True)
class DlibLayer:
    kind: str                      # con, affine, relu, max_pool, avg_pool, add, fc
    params: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    filters: int = 0
    window: tuple[int, int] = (0, 0)  # (rows, columns); (0, 0): the whole input
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class DlibResNet:
    mean_rgb: tuple[float, float, float]  # the input layer subtracts it, then divides by 256
    layers: tuple[DlibLayer, ...]


def _layer(reader: _Reader, name: str) -> DlibLayer:
    if name.startswith("con_"):
        params = reader.tensor().ravel()
        filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (
            reader.integer() for _ in range(7))
        return DlibLayer("con", params, filters, (rows, cols), (stride_y, stride_x),
                         (pad_y, pad_x))
    if name.startswith("affine"):
        return DlibLayer("affine", reader.tensor().ravel())
    if name.startswith("fc"):
        outputs, inputs = reader.integer(), reader.integer()
        return DlibLayer("fc", reader.tensor().reshape(inputs, outputs), outputs)
    if name.startswith(("max_pool", "avg_pool")):
        rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(6))
        return DlibLayer(name[:8], window=(rows, cols), stride=(stride_y, stride_x),
                         padding=(pad_y, pad_x))
    return DlibLayer("relu" if name.startswith("relu") else "add")


def read_dlib_resnet(path: Path) -> DlibResNet:
    """The layers of dlib's face-recognition ResNet, input first. ``ModelError`` for a file
    that is not one (another dlib model, a damaged download)."""
    data = path.read_bytes()
    marker = data.find(INPUT_LAYER.encode())
    if marker < 2 or b"loss_metric_" not in data[:marker]:
        raise ModelError(f"{path}: not dlib's face recognition ResNet (no metric-loss network "
                         "with an RGB input in it)", _PREPARE_AGAIN)
    try:
        reader = _Reader(data, marker - 2)
        reader.text()
        mean = (reader.real(), reader.real(), reader.real())
        layers = []
        while (found := _LAYER_NAMES.search(data, reader.position)) is not None:
            reader.position = found.start() - 2  # the name's length, as one small integer
            name = reader.text()
            layers.append(_layer(reader, name))  # reading on past its parameters means a
            # weight's bytes are never taken for the next layer's name
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: damaged dlib network ({exc})", _PREPARE_AGAIN) from None
    kinds = [layer.kind for layer in layers]
    if kinds.count("con") != kinds.count("affine") or kinds[-1:] != ["fc"] \
            or layers[-1].filters != DESCRIPTOR_DIM:
        raise ModelError(f"{path}: not the face recognition ResNet this converter knows "
                         f"({kinds.count('con')} convolutions, {kinds.count('affine')} affine "
                         f"layers, last layer {kinds[-1] if kinds else 'none'})", _PREPARE_AGAIN)
    return DlibResNet(mean, tuple(layers))


class _Graph:
    """ONNX nodes and weights, with each tensor's (channels, rows, columns) tracked so the
    residual adds can pad as dlib's do."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []

    def weight(self, value: np.ndarray) -> str:
        name = f"w{len(self.weights)}"
        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        output = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def pool(self, op: str, tensor: str, layer: DlibLayer) -> str:
        pad_y, pad_x = layer.padding
        return self.node(op, [tensor], kernel_shape=list(layer.window),
                         strides=list(layer.stride), pads=[pad_y, pad_x, pad_y, pad_x])

    def padded(self, tensor: str, shape: tuple[int, ...], to: tuple[int, ...]) -> str:
        if shape == to:
            return tensor
        pads = [0] * 4 + [0] + [t - s for s, t in zip(shape, to)]
        return self.node("Pad", [tensor, self.weight(np.array(pads, np.int64))])


def _out(size: int, window: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - window) // stride + 1


def resnet_to_onnx(net: DlibResNet) -> onnx.ModelProto:
    """The network as an ONNX graph on (N, 3, 150, 150) float32 input, already normalised
    the way dlib's input layer does: RGB, ``(pixel - mean) / 256`` (the manifest's spec)."""
    graph = _Graph()
    tensor, shape = INPUT_NAME, (3, CHIP_SIZE, CHIP_SIZE)
    block: tuple[str, tuple[int, ...]] | None = None  # a residual block's input (its skip)
    stem_done = False
    for layer in net.layers:
        if layer.kind == "con":
            if stem_done and block is None:
                block = tensor, shape
            rows, cols = layer.window
            inputs = (len(layer.params) - layer.filters) // (layer.filters * rows * cols)
            if inputs != shape[0]:
                raise ModelError(f"dlib network: a convolution expects {inputs} channels, "
                                 f"gets {shape[0]}", _PREPARE_AGAIN)
            weights = layer.params[:-layer.filters].reshape(layer.filters, inputs, rows, cols)
            pad_y, pad_x = layer.padding
            tensor = graph.node("Conv", [tensor, graph.weight(weights),
                                         graph.weight(layer.params[-layer.filters:])],
                                kernel_shape=[rows, cols], strides=list(layer.stride),
                                pads=[pad_y, pad_x, pad_y, pad_x])
            shape = (layer.filters, *(_out(s, w, st, p) for s, w, st, p in
                                      zip(shape[1:], layer.window, layer.stride, layer.padding)))
        elif layer.kind == "affine":  # dlib's batch normalisation, frozen: gamma, then beta
            half = len(layer.params) // 2
            tensor = graph.node("Mul", [tensor, graph.weight(
                layer.params[:half].reshape(1, half, 1, 1))])
            tensor = graph.node("Add", [tensor, graph.weight(
                layer.params[half:].reshape(1, half, 1, 1))])
        elif layer.kind == "relu":
            tensor = graph.node("Relu", [tensor])
        elif layer.kind == "max_pool":
            tensor = graph.pool("MaxPool", tensor, layer)
            shape = (shape[0], *(_out(s, w, st, p) for s, w, st, p in
                                 zip(shape[1:], layer.window, layer.stride, layer.padding)))
            stem_done = True
        elif layer.kind == "avg_pool" and layer.window == (0, 0):  # over everything
            tensor = graph.node("Flatten", [graph.node("GlobalAveragePool", [tensor])])
            shape = (shape[0],)
        elif layer.kind == "avg_pool":  # the downsampling block's skip
            if block is None:
                raise ModelError("dlib network: a pooling layer outside a residual block",
                                 _PREPARE_AGAIN)
            skip, skip_shape = block
            block = graph.pool("AveragePool", skip, layer), (skip_shape[0], *(
                _out(s, w, st, p) for s, w, st, p in
                zip(skip_shape[1:], layer.window, layer.stride, layer.padding)))
        elif layer.kind == "add":
            if block is None:
                raise ModelError("dlib network: an add outside a residual block",
                                 _PREPARE_AGAIN)
            skip, skip_shape = block
            full = tuple(max(a, b) for a, b in zip(shape, skip_shape))
            tensor = graph.node("Add", [graph.padded(tensor, shape, full),
                                        graph.padded(skip, skip_shape, full)])
            shape, block = full, None
        elif layer.kind == "fc":
            tensor = graph.node("MatMul", [tensor, graph.weight(layer.params)])
    graph.nodes[-1].output[0] = OUTPUT_NAME
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, "dlib_face_recognition_resnet_model_v1",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                           ["N", 3, CHIP_SIZE, CHIP_SIZE])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT,
                                           ["N", DESCRIPTOR_DIM])],
            graph.weights),
        opset_imports=[helper.make_opsetid("", 13)], producer_name="edge.models.dlib_onnx")
    onnx.checker.check_model(model)
    return model


def convert_dlib_resnet(source: Path, target: Path) -> DlibResNet:
    """Write ``source`` (dlib's .dat) as ONNX at ``target``; the network, for its mean."""
    net = read_dlib_resnet(source)
    tmp = target.with_name(target.name + ".tmp")
    onnx.save(resnet_to_onnx(net), str(tmp))
    tmp.replace(target)
    return net


def probe_chips(count: int = 4) -> list[np.ndarray]:
    """RGB chips that reach every weight: seeded noise over a gradient (no photo needed, so
    the check also runs on a device without the demo's photos)."""
    generator = np.random.default_rng(150)
    ramp = np.linspace(0, 255, CHIP_SIZE, dtype=np.float32)
    base = np.stack([ramp[None, :].repeat(CHIP_SIZE, 0), ramp[:, None].repeat(CHIP_SIZE, 1),
                     np.full((CHIP_SIZE, CHIP_SIZE), 128, np.float32)], axis=2)
    return [np.clip(base + generator.normal(0, 40 * i, base.shape), 0, 255).astype(np.uint8)
            for i in range(count)]


def check_against_dlib(source: Path, encoder: FaceEncoder, tolerance: float = 1e-4) -> float:
    """The largest difference between dlib's descriptors and ``encoder``'s (the converted
    network on the service's own preprocessing) on the same chips; ``ModelError`` above
    ``tolerance`` (dlib's descriptors are about 1.4 long; 0.05 of cosine separates a
    person from a stranger)."""
    import dlib

    network = dlib.face_recognition_model_v1(str(source))
    chips = probe_chips()
    reference = np.array([np.asarray(vector) for vector in
                          network.compute_face_descriptor(chips)], np.float32)
    converted = encoder.encode([chip[:, :, ::-1] for chip in chips])  # the service's BGR
    difference = float(np.abs(converted - reference).max())
    if not difference <= tolerance:
        raise ModelError(f"{source.name} as ONNX: its descriptors differ from dlib's by "
                         f"{difference:.2g} (more than {tolerance:g})", _PREPARE_AGAIN)
    return difference
