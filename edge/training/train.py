"""Train the study's expression classifier and export it as a model the appliance loads.

Data: an ImageFolder-style tree with one folder per class, named after the 7 emotions
(any order, any case: angry, disgust, fear, happy, sad, surprise, neutral). Training uses
the study's augmentation, scaling the saturation (S in HSV) by a random factor, plus
mirroring. Classes are balanced by sampling. After each epoch the validation split is
scored; at the end a table gives accuracy, precision and recall per class, and a PNG the
training curves. The model is exported to ONNX with its softmax, and a manifest entry is
written whose labels are in the model's own order: the appliance maps them by name.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from edge import __version__
from edge.core.emotions import BASIC_EMOTIONS
from edge.core.errors import EdgeError
from edge.core.manifest import InputSpec, ModelEntry, Source

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class TrainConfig:
    data: Path
    out: Path
    architecture: Literal["vgg16", "mobilenet", "resnet50"] = "vgg16"
    name: str = "vgg16-expression"
    size: int = 64
    colour: Literal["GRAY", "RGB"] = "GRAY"
    epochs: int = 10
    batch: int = 32
    learning_rate: float = 1e-3
    validation: float = 0.2
    saturation: tuple[float, float] = (0.5, 1.5)
    width: float = 1.0
    seed: int = 7
    max_steps: int | None = None  # per epoch; for smoke tests


def find_images(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names in folder order, [(image, class index)]); clear errors for bad trees."""
    if not root.is_dir():
        raise EdgeError(f"{root}: no such data folder",
                        "give a folder with one sub-folder per emotion")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    names = [f.name.lower() for f in folders]
    unknown = sorted(set(names) - set(BASIC_EMOTIONS))
    missing = sorted(set(BASIC_EMOTIONS) - set(names))
    if unknown or missing:
        raise EdgeError(f"{root}: class folders must be the 7 emotions "
                        f"{list(BASIC_EMOTIONS)} (unknown: {unknown}, missing: {missing})")
    items = [(path, index) for index, folder in enumerate(folders)
             for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]
    empty = [names[i] for i in range(len(names)) if not any(c == i for _, c in items)]
    if empty:
        raise EdgeError(f"{root}: no images in {empty}")
    return names, items


def scale_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """The study's augmentation: multiply the S channel in HSV by ``factor`` (BGR in/out)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * factor, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def to_input(image: np.ndarray, size: int, colour: str) -> np.ndarray:
    """BGR uint8 -> C x S x S float32 normalised as (x - 127.5) / 127.5 (the manifest's)."""
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    if colour == "GRAY":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
    else:
        image = image[:, :, ::-1]
    return ((image.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).copy()


def _split(items: list[tuple[Path, int]], share: float,
           rng: np.random.Generator) -> tuple[list, list]:
    """Stratified: each class gives ``share`` of its images (at least one) to validation."""
    train, validation = [], []
    for label in sorted({c for _, c in items}):
        members = [item for item in items if item[1] == label]
        order = rng.permutation(len(members))
        cut = max(1, round(len(members) * share)) if len(members) > 1 else 0
        validation += [members[i] for i in order[:cut]]
        train += [members[i] for i in order[cut:]]
    return train, validation


def per_class_table(names: list[str], truth: np.ndarray, predicted: np.ndarray) -> tuple[
        str, dict[str, dict[str, float]]]:
    lines = [f"{'class':10} {'n':>5} {'accuracy':>9} {'precision':>10} {'recall':>7}"]
    metrics = {}
    for index, name in enumerate(names):
        tp = int(((predicted == index) & (truth == index)).sum())
        fp = int(((predicted == index) & (truth != index)).sum())
        fn = int(((predicted != index) & (truth == index)).sum())
        tn = len(truth) - tp - fp - fn
        row = {"n": int((truth == index).sum()),
               "accuracy": (tp + tn) / max(len(truth), 1),
               "precision": tp / (tp + fp) if tp + fp else 0.0,
               "recall": tp / (tp + fn) if tp + fn else 0.0}
        metrics[name] = row
        lines.append(f"{name:10} {row['n']:>5} {row['accuracy']:>9.3f} {row['precision']:>10.3f}"
                     f" {row['recall']:>7.3f}")
    overall = float((truth == predicted).mean()) if len(truth) else 0.0
    lines.append(f"overall accuracy {overall:.3f} on {len(truth)} validation images")
    return "\n".join(lines), metrics


def train(config: TrainConfig, say=lambda m: print(m, file=sys.stderr, flush=True)) -> ModelEntry:
    try:
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
    except ImportError:
        raise EdgeError("training needs PyTorch", "pip install -e '.[train]'") from None
    from edge.training.nets import build, count_layers

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    names, items = find_images(config.data)
    train_items, val_items = _split(items, config.validation, rng)
    channels = 1 if config.colour == "GRAY" else 3

    class Images(Dataset):
        def __init__(self, entries: list, augment: bool) -> None:
            self.entries, self.augment = entries, augment
            self.rng = np.random.default_rng(config.seed + int(augment))

        def __len__(self) -> int:
            return len(self.entries)

        def __getitem__(self, index: int):
            path, label = self.entries[index]
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise EdgeError(f"{path}: not a readable image")
            if self.augment:
                image = scale_saturation(image, self.rng.uniform(*config.saturation))
                if self.rng.random() < 0.5:
                    image = image[:, ::-1]
            return torch.from_numpy(to_input(image, config.size, config.colour)), label

    counts = np.bincount([c for _, c in train_items], minlength=len(names))
    weights = [1.0 / float(counts[c]) for _, c in train_items]  # class-balanced sampling
    sampler = WeightedRandomSampler(weights, num_samples=len(train_items), replacement=True,
                                    generator=torch.Generator().manual_seed(config.seed))
    train_loader = DataLoader(Images(train_items, True), batch_size=config.batch,
                              sampler=sampler)
    val_loader = DataLoader(Images(val_items, False), batch_size=config.batch)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build(config.architecture, channels, len(names), config.width).to(device)
    conv, dense = count_layers(model)
    say(f"{config.architecture}: {conv} convolution and {dense} fully connected layers, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, on {device}; "
        f"{len(train_items)} training and {len(val_items)} validation images")
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    truth = predicted = np.zeros(0, np.int64)
    for epoch in range(1, config.epochs + 1):
        began = time.monotonic()
        model.train()
        losses, correct, seen = [], 0, 0
        for step, (inputs, labels) in enumerate(train_loader):
            if config.max_steps is not None and step >= config.max_steps:
                break
            inputs, labels = inputs.to(device), labels.to(device)
            optimiser.zero_grad()
            logits = model(inputs)
            loss = loss_fn(logits, labels)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        model.eval()
        val_losses, outs, golds = [], [], []
        with torch.no_grad():
            for inputs, labels in val_loader:
                logits = model(inputs.to(device))
                val_losses.append(float(loss_fn(logits, labels.to(device))))
                outs.append(logits.argmax(1).cpu().numpy())
                golds.append(labels.numpy())
        truth = np.concatenate(golds) if golds else truth
        predicted = np.concatenate(outs) if outs else predicted
        record = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                  "accuracy": correct / max(seen, 1),
                  "val_loss": float(np.mean(val_losses)) if val_losses else float("nan"),
                  "val_accuracy": float((truth == predicted).mean()) if len(truth) else 0.0}
        history.append(record)
        say(f"epoch {epoch}/{config.epochs}: loss {record['loss']:.3f}, accuracy "
            f"{record['accuracy']:.3f}, validation loss {record['val_loss']:.3f}, accuracy "
            f"{record['val_accuracy']:.3f} ({time.monotonic() - began:.1f} s)")
    table, metrics = per_class_table(names, truth, predicted)
    print(table, flush=True)
    config.out.mkdir(parents=True, exist_ok=True)
    _plot(history, config.out / f"{config.name}-training.png")
    entry = _export(model.cpu().eval(), config, names, channels)
    (config.out / f"{config.name}-report.json").write_text(json.dumps(
        {"config": {k: str(v) for k, v in asdict(config).items()}, "history": history,
         "per_class": metrics}, indent=1))
    return entry


def _plot(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    loss.plot(epochs, [h["loss"] for h in history], label="training")
    loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    accuracy.plot(epochs, [h["accuracy"] for h in history], label="training")
    accuracy.plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    loss.set_title("loss")
    accuracy.set_title("accuracy")
    for axis in (loss, accuracy):
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _export(model: Any, config: TrainConfig, names: list[str], channels: int) -> ModelEntry:
    import torch

    wrapped = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)).eval()
    target = config.out / f"{config.name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, not broken
        torch.onnx.export(wrapped, (torch.zeros(1, channels, config.size, config.size),),
                          str(target), input_names=["input"], output_names=["probabilities"],
                          dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
                          opset_version=17, dynamo=False)
    data = target.read_bytes()
    return ModelEntry(
        name=config.name, kind="expression", format="onnx", file=target.name,
        sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
        source=Source(package="edge tools/train_emotion.py", version=__version__,
                      member=str(config.data.name),
                      licence="trained locally: the data set's licence applies",
                      conversion=f"{config.architecture}, {config.epochs} epochs, saturation "
                                 f"augmentation {config.saturation}, class-balanced sampling"),
        input=InputSpec(name="input", layout="NCHW", height=config.size, width=config.size,
                        colour=config.colour, mean=[127.5] * channels, scale=1 / 127.5),
        outputs=["probabilities"], labels=names,
        notes=f"{config.architecture} trained on {config.data.name}; labels in the model's "
              "order, mapped by name")
