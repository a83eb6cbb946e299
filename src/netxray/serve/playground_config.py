"""What a playground trains: its configuration, bounded and validated, and its URL form.

A :class:`PlayConfig` is the whole setup of one playground (data, features, network,
training); every field is checked against fixed ranges and the server's
:class:`~netxray.serve.settings.Limits`, so a client can ask for nothing unbounded.
:func:`to_query` / :func:`from_query` turn it into the URL's ``#...`` part and back, so a
setup can be shared as a link. :data:`PRESETS` are the library's counter-examples
(:mod:`netxray.presets`) and the lecture's setup (:class:`netxray.demo.DemoConfig`), sized
to the playground's limits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from netxray.serve.settings import Limits

__all__ = ["ACTIVATIONS", "DATASETS", "FEATURES", "PRESETS", "PlayConfig", "from_query",
           "preset", "to_query"]

#: data sets by name: the Playground's four, moons, and a user's uploaded 2-D CSV
DATASETS = ("circle", "xor", "gauss", "spiral", "moons", "csv")
#: data sets that can have more than two classes
MULTICLASS = ("gauss", "spiral", "csv")
#: input features computed from (x1, x2), in the order they are drawn
FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2")
#: the playground's activation names -> :data:`netxray.models.ACTIVATIONS` names
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "linear": "identity",
               "leaky_relu": "leaky_relu", "gelu": "gelu"}
REGULARIZATIONS = ("none", "l1", "l2")
OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("he", "xavier", "normal", "lecture", "torch")
MAX_CLASSES = 6
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class PlayConfig:
    """One playground's setup. Defaults are TensorFlow Playground's: circle, 50% train,
    batch 10, x1 and x2, two hidden layers of 4 and 2 tanh units, learning rate 0.03.

    ``batch_size`` 0 is full-batch gradient descent. ``noise`` is the data set's own noise
    parameter (:mod:`netxray.data`). ``init_scale`` is the weights' std for ``init="normal"``
    and ``"lecture"``. ``resolution``: the decision surface's grid side (unit maps use half).
    ``preset``: the name of the preset it came from (shown only).
    """

    dataset: str = "circle"
    n_samples: int = 500
    noise: float = 0.05
    train_ratio: float = 0.5
    classes: int = 2
    batch_size: int = 10
    features: tuple[str, ...] = ("x1", "x2")
    hidden: tuple[int, ...] = (4, 2)
    activation: str = "tanh"
    init: str = "xavier"
    init_scale: float = 0.4
    optimizer: str = "sgd"
    lr: float = 0.03
    regularization: str = "none"
    reg_rate: float = 0.0
    discretize: bool = False
    seed: int = 0
    resolution: int = 40
    preset: str = ""

    def validate(self, limits: Limits) -> PlayConfig:
        """Raise ``ValueError`` naming the first field out of bounds; return ``self``."""
        _choice("dataset", self.dataset, DATASETS)
        _int("n_samples", self.n_samples, 20, limits.max_samples)
        _num("noise", self.noise, 0.0, 2.0)
        _num("train_ratio", self.train_ratio, 0.1, 0.9)
        _int("classes", self.classes, 2, MAX_CLASSES)
        if self.classes > 2 and self.dataset not in MULTICLASS:
            raise ValueError(f"classes={self.classes}: only {', '.join(MULTICLASS)} can have more "
                             f"than 2 classes; choose one of them or classes=2")
        _int("batch_size", self.batch_size, 0, limits.max_samples)
        if not self.features:
            raise ValueError(f"features: choose at least one of {', '.join(FEATURES)}")
        for f in self.features:
            _choice("features", f, FEATURES)
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features lists a feature twice: {list(self.features)}")
        if len(self.hidden) > limits.max_layers:
            raise ValueError(f"hidden has {len(self.hidden)} layers; at most "
                             f"{limits.max_layers} are allowed")
        for i, units in enumerate(self.hidden):
            _int(f"hidden[{i}]", units, 1, limits.max_units)
        _choice("activation", self.activation, tuple(ACTIVATIONS))
        _choice("init", self.init, INITS)
        _num("init_scale", self.init_scale, 1e-4, 10.0)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _num("lr", self.lr, 1e-12, 1e4)
        _choice("regularization", self.regularization, REGULARIZATIONS)
        _num("reg_rate", self.reg_rate, 0.0, 10.0)
        if not isinstance(self.discretize, bool):
            raise ValueError(f"discretize must be true or false; got {self.discretize!r}")
        _int("seed", self.seed, 0, MAX_SEED)
        _int("resolution", self.resolution, 8, limits.max_resolution)
        if self.preset and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; presets: {', '.join(PRESETS)}")
        return self

    @property
    def label(self) -> str:
        """The network in one line, e.g. ``circle: x1,x2 -> 4-2 tanh``."""
        arch = "-".join(str(h) for h in self.hidden) or "no hidden layer"
        return f"{self.dataset}: {','.join(self.features)} -> {arch} {self.activation}"


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number in {lo}..{hi}; got {value!r}")


def _num(name: str, value: Any, lo: float, hi: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo:g}, {hi:g}]; got {value!r}")


# ---------------------------------------------------------------- URL state
#: short URL keys, in the order they are written
_KEYS = {"dataset": "data", "n_samples": "n", "noise": "noise", "train_ratio": "ratio",
         "classes": "classes", "batch_size": "batch", "features": "feat", "hidden": "hidden",
         "activation": "act", "init": "init", "init_scale": "scale", "optimizer": "opt",
         "lr": "lr", "regularization": "reg", "reg_rate": "rate", "discretize": "disc",
         "seed": "seed", "resolution": "res", "preset": "preset"}
_FIELDS = {v: k for k, v in _KEYS.items()}
_TYPES = {f.name: f.type for f in fields(PlayConfig)}


def to_query(config: PlayConfig) -> str:
    """The config as a URL query (``data=circle&n=500&...``), every field written."""
    out = []
    for name, key in _KEYS.items():
        v = getattr(config, name)
        if isinstance(v, tuple):
            v = ",".join(str(x) for x in v)
        elif isinstance(v, bool):
            v = int(v)
        elif isinstance(v, float):
            v = repr(v)
        out.append((key, str(v)))
    return urlencode(out, safe=",^")


def _parse(name: str, text: str) -> Any:
    kind = _TYPES[name]
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            if text not in ("0", "1", "true", "false"):
                raise ValueError
            return text in ("1", "true")
        if kind == "tuple[int, ...]":
            return tuple(int(t) for t in text.split(",") if t.strip())
        if kind == "tuple[str, ...]":
            return tuple(t.strip() for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"URL parameter {_KEYS[name]}={text!r} is not a valid {name} "
                         f"({kind})") from None
    return text


def from_query(query: str, limits: Limits, base: PlayConfig | None = None) -> PlayConfig:
    """The config a URL query describes (missing keys keep ``base``'s values, by default
    the defaults), validated against ``limits``. Unknown or repeated keys are errors."""
    if len(query) > 2000:
        raise ValueError(f"the URL state is {len(query)} characters; at most 2000 are read")
    pairs = parse_qsl(query.lstrip("#?"), keep_blank_values=True, strict_parsing=False)
    seen: set[str] = set()
    changes: dict[str, Any] = {}
    for key, text in pairs:
        if key not in _FIELDS:
            raise ValueError(f"unknown URL parameter {key!r}; known: {', '.join(_FIELDS)}")
        if key in seen:
            raise ValueError(f"URL parameter {key!r} is given twice")
        seen.add(key)
        name = _FIELDS[key]
        changes[name] = _parse(name, text)
    return replace(base or PlayConfig(), **changes).validate(limits)


def from_dict(data: dict[str, Any], limits: Limits) -> PlayConfig:
    """A config from JSON (field names as in :class:`PlayConfig`), validated."""
    if not isinstance(data, dict):
        raise ValueError("the config must be a JSON object of field -> value")
    unknown = set(data) - set(_TYPES)
    if unknown:
        raise ValueError(f"unknown config field(s) {sorted(unknown)}; fields: {', '.join(_TYPES)}")
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return replace(PlayConfig(), **changes).validate(limits)


def to_dict(config: PlayConfig) -> dict[str, Any]:
    d = asdict(config)
    d["features"], d["hidden"] = list(config.features), list(config.hidden)
    return d


# ---------------------------------------------------------------- presets
def _counter(**kw: Any) -> PlayConfig:
    """The counter-examples' common recipe (netxray.presets): moons(700, 0.2), 70% train,
    full batch, x1 and x2; the 64-unit layers of the library's recipes become 16 here."""
    base = dict(dataset="moons", n_samples=700, noise=0.2, train_ratio=0.7, batch_size=0,
                resolution=40)
    base.update(kw)
    return PlayConfig(**base)


#: name -> (what it shows, the config)
PRESETS: dict[str, tuple[str, PlayConfig]] = {
    "playground": ("TensorFlow Playground's default: circle, 4-2 tanh, lr 0.03.",
                   PlayConfig(preset="playground")),
    "lecture": ("The lecture's setup (netxray demo): moons(400, noise 0.25, seed 5), 70% train, "
                "a 2-10-2 ReLU MLP with the lecture's initialisation, full-batch SGD, lr 0.2.",
                PlayConfig(dataset="moons", n_samples=400, noise=0.25, seed=5, train_ratio=0.7,
                           batch_size=0, hidden=(10,), activation="relu", init="lecture",
                           init_scale=0.4, lr=0.2, preset="lecture")),
    "healthy": ("A 16-16 LeakyReLU MLP, He init, momentum SGD, lr 0.05: no findings.",
                _counter(hidden=(16, 16), activation="leaky_relu", init="he",
                         optimizer="momentum", lr=0.05, preset="healthy")),
    "dying_relu": ("A 16-16 ReLU MLP trained with a learning rate far too high (momentum, "
                   "lr 1.5): units are pushed negative for every input and die (greyed).",
                   _counter(hidden=(16, 16), activation="relu", init="he",
                            optimizer="momentum", lr=1.5, preset="dying_relu")),
    "saturated": ("A 16-16 tanh MLP whose weights start at N(0, 3^2): most units sit at +-1, "
                  "where tanh has no gradient (marked).",
                  _counter(hidden=(16, 16), activation="tanh", init="normal", init_scale=3.0,
                           lr=0.05, preset="saturated")),
    "vanishing": ("A deep (6 layers) sigmoid MLP: the first layers get almost no gradient.",
                  _counter(hidden=(16,) * 6, activation="sigmoid", init="xavier", lr=0.5,
                           preset="vanishing")),
    "exploding": ("A deep (6 layers) ReLU MLP with weights N(0, 0.7^2), twice He's: "
                  "activations grow at every layer.",
                  _counter(hidden=(16,) * 6, activation="relu", init="normal", init_scale=0.7,
                           lr=1e-12, preset="exploding")),
    "nan": ("A ReLU MLP trained with a learning rate that diverges (lr 1e4): the loss and "
            "the weights become NaN.",
            _counter(hidden=(16, 16), activation="relu", init="he", optimizer="momentum",
                     lr=1e4, preset="nan")),
    "spiral3": ("Multi-class: a three-armed spiral with sin features, 3 layers of 12 tanh "
                "units, Adam.",
                PlayConfig(dataset="spiral", classes=3, n_samples=600, noise=0.1,
                           features=("x1", "x2", "sin_x1", "sin_x2"), hidden=(12, 12, 12),
                           activation="tanh", optimizer="adam", lr=0.01, batch_size=20,
                           preset="spiral3")),
}


def preset(name: str, limits: Limits) -> PlayConfig:
    """The preset called ``name``, validated against ``limits``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name][1].validate(limits)
