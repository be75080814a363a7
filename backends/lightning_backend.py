"""PyTorch Lightning: a plain nn.Module wrapped by a LightningModule, a quiet Trainer.

Reads like a translation of keras_backend.py: same sections, same order, same names.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from backends.base import (
    EpochReporter,
    Evaluation,
    LossSettings,
    OnEpoch,
    TrainedModel,
    TrainInputs,
    evaluate_outputs,
    evaluation_inputs,
    thread_count,
)
from backends.conv_torch import conv_layers, from_torch, to_torch
from harness.core.config import (
    Activation,
    ConfigError,
    Device,
    OptimizerName,
    Task,
    conv_output_shape,
)
from harness.core.init import Weights

# The Trainer's banners ("GPU available...", tips) are not the user's business.
for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module=r"lightning(\..*)?")

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --- the process: device, threads ----------------------------------------------------------


def _configure_process(inputs: TrainInputs) -> dict[str, str]:
    """Threads, visible devices: what torch sees of this machine."""
    want = Device(inputs.config.train.device)
    has_gpu = torch.cuda.is_available()
    if want is Device.gpu and not has_gpu:
        raise ConfigError("train.device=gpu, but torch sees no CUDA GPU; use train.device=cpu")
    use_gpu = has_gpu and want is not Device.cpu
    # torch's intra-op threads gain nothing on 25-unit layers, and OpenMP's spinning made an
    # epoch 10x slower (108 ms -> 1084 ms, digits 0-9) on a busy 2-core machine: default 1
    threads = thread_count(inputs.config, cap=1)
    torch.set_num_threads(threads)
    return {
        "device": f"gpu:{torch.cuda.get_device_name(0)}" if use_gpu else "cpu",
        "threads": str(threads),
    }


# --- the network ---------------------------------------------------------------------------

_ACTIVATIONS: dict[Activation, Callable[[], nn.Module]] = {
    Activation.sigmoid: nn.Sigmoid,
    Activation.relu: nn.ReLU,
    Activation.linear: nn.Identity,
    Activation.softmax: lambda: nn.Softmax(dim=-1),
}


def _activate(act: Activation, x: torch.Tensor) -> torch.Tensor:
    if act is Activation.softmax and x.dim() == 2 and x.device.type == "cpu":
        # the same op along the other axis: torch's CPU softmax over a short last dimension
        # (10 classes) is ~6x slower than over the rows of the transposed array (0.25 vs 0.04
        # ms on 1797 rows, a third of the evaluation); values agree to an ulp
        return torch.softmax(x.t().contiguous(), dim=0).t()
    return _ACTIVATIONS[act]()(x)


class MLP(nn.Module):
    """The network itself: Linear layers and activations, nothing about training."""

    def __init__(
        self,
        sizes: list[int],
        hidden_activation: Activation,
        output: Activation,
        before: list[nn.Module] | None = None,
    ):
        super().__init__()
        layers: list[nn.Module] = list(before or [])  # the conv layers (backends.conv_torch)
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            last = i == len(sizes) - 2
            act = output if last else hidden_activation
            layers += [nn.Linear(fan_in, fan_out), _ACTIVATIONS[act]()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    def weighted(self) -> list[nn.Linear | nn.Conv2d]:
        """The layers with (weight, bias), in the order of the harness's weights."""
        return [m for m in self.layers if isinstance(m, (nn.Linear, nn.Conv2d))]


def _model(inputs: TrainInputs, dtype: torch.dtype) -> MLP:
    model = inputs.config.model
    n_in, before = inputs.data.n_features, None
    if model.conv_filters:
        shape = inputs.data.image_shape
        h, w, c = conv_output_shape(shape, list(model.conv_filters), model.kernel_size)
        n_in = h * w * c
        act = _ACTIVATIONS[inputs.hidden_activation]
        before = conv_layers(shape, list(model.conv_filters), model.kernel_size, act)
    sizes = [n_in, *model.hidden, inputs.data.n_outputs]
    net = MLP(sizes, inputs.hidden_activation, inputs.output_activation, before)
    net = net.to(dtype)  # before copying: a float32 layer would round float64 weights
    with torch.no_grad():
        for layer, (kernel, bias) in zip(net.weighted(), inputs.weights, strict=True):
            layer.weight.copy_(torch.from_numpy(to_torch(kernel)))  # torch's (out, in, ...)
            layer.bias.copy_(torch.from_numpy(bias))
    return net


def _weights(net: MLP) -> Weights:
    return [
        (from_torch(layer.weight.detach().cpu().numpy()), layer.bias.detach().cpu().numpy().copy())
        for layer in net.weighted()
    ]


def _logits_and_output(net: MLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pre-activation, output) of the last layer: the same modules, split before the last."""
    logits = net.layers[:-1](x)
    return logits, net.layers[-1](logits)


# --- the loss ------------------------------------------------------------------------------


def _loss(settings: LossSettings) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The task's loss, called loss(output, target) as torch does; Keras' clipping included."""
    eps = settings.clip_eps
    if settings.task is Task.regression:
        return F.mse_loss
    if settings.from_logits:
        if settings.task is Task.multiclass:
            return F.cross_entropy
        return F.binary_cross_entropy_with_logits
    if settings.task is Task.multiclass:
        # Keras: log of the clipped probabilities, then softmax cross-entropy on those logs
        return lambda p, y: F.cross_entropy(torch.log(p.clamp(eps, 1 - eps)), y)

    def bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # torch's BCELoss clamps log(p) at -100 instead; Keras clips p to [eps, 1 - eps]
        p = p.clamp(eps, 1 - eps)
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()

    return bce


# --- the optimizer -------------------------------------------------------------------------


class KerasAdam(torch.optim.Adam):
    """torch's Adam with epsilon where Keras 3 puts it.

    Keras: w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps). torch adds its eps to
    sqrt(v) / sqrt(1 - b2^t) instead, so torch's eps = eps / sqrt(1 - b2^t) at step t gives
    the same update. Left at torch's convention (30x larger at step 1), the weights move
    5e-4..4e-2 away from Keras' in 100 epochs on the lesson's networks (losses up to 1e-3
    relative); with it, float64 runs agree with the NumPy reference to 1e-16.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float], eps: float) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        self.keras_eps = eps
        self.steps_taken = 0

    def step(self, closure=None):
        self.steps_taken += 1
        for group in self.param_groups:
            group["eps"] = self.keras_eps / math.sqrt(1 - group["betas"][1] ** self.steps_taken)
        return super().step(closure)


def _optimizer(inputs: TrainInputs, params) -> torch.optim.Optimizer:
    opt = inputs.config.optimizer
    if OptimizerName(opt.name) is OptimizerName.gd:
        return torch.optim.SGD(params, lr=opt.lr, momentum=0.0)
    return KerasAdam(params, lr=opt.lr, betas=(opt.beta_1, opt.beta_2), eps=opt.epsilon)


# --- the batches ---------------------------------------------------------------------------


class EpochBatches:
    """Every epoch's batches in the harness's order, from tensors already on the device."""

    def __init__(self, inputs: TrainInputs, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.epochs = [
            [torch.from_numpy(b).to(x.device) for b in inputs.batches(e)]
            for e in range(inputs.config.train.epochs)
        ]
        self.system: L.LightningModule | None = None  # its current_epoch picks the batches

    def __len__(self) -> int:
        return len(self.epochs[0])

    def __iter__(self):
        # Lightning may call iter() more than once per epoch: index by the trainer's epoch
        epoch = self.system.current_epoch if self.system is not None else 0
        return ((self.x[idx], self.y[idx]) for idx in self.epochs[epoch])


def _epoch_batches(
    inputs: TrainInputs, x: torch.Tensor, y: torch.Tensor
) -> tuple[EpochBatches, int]:
    batches = EpochBatches(inputs, x, y)
    return batches, len(batches)


# --- the training loop's hook --------------------------------------------------------------


class System(L.LightningModule):
    """The training system: loss and optimizer, and each epoch's end to the EpochReporter."""

    def __init__(self, inputs: TrainInputs, net: MLP, loss, reporter: EpochReporter) -> None:
        super().__init__()
        self.inputs, self.net, self.loss_fn, self.reporter = inputs, net, loss, reporter
        self.batch_losses: list[torch.Tensor] = []
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        return _optimizer(self.inputs, self.net.parameters())

    def on_train_epoch_start(self) -> None:
        self.batch_losses, self.batch_sizes = [], []
        self.reporter.begin()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self.net(x), y)
        # kept on the device and reduced once per epoch: no host sync, no extra ops per step
        self.batch_losses.append(loss.detach())
        self.batch_sizes.append(len(x))
        return loss

    def on_train_epoch_end(self) -> None:
        if not self.reporter.end(self.current_epoch, self._epoch_loss()):
            self.trainer.should_stop = True

    def _epoch_loss(self) -> float:
        """The epoch's mean loss weighted by batch size, as Keras' loss tracker; a host value."""
        sizes = torch.tensor(self.batch_sizes, dtype=torch.float64, device=self.device)
        losses = torch.stack(self.batch_losses).double()
        return float((losses * sizes).sum() / sizes.sum())


# --- the backend ---------------------------------------------------------------------------


class LightningBackend:
    name = "lightning"

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        info = _configure_process(inputs)
        train = inputs.config.train
        torch.backends.cuda.matmul.allow_tf32 = train.allow_tf32
        torch.backends.cudnn.allow_tf32 = train.allow_tf32
        L.seed_everything(inputs.config.seed, workers=False, verbose=False)
        torch.use_deterministic_algorithms(True)
        info.update(
            framework="lightning",
            lightning_version=L.__version__,
            torch_version=torch.__version__,
        )
        self.use_gpu = info["device"].startswith("gpu")
        return info

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> TrainedModel:
        data = inputs.data
        dtype = _DTYPES[inputs.config.train.dtype.value]
        device = torch.device("cuda" if self.use_gpu else "cpu")
        y_dtype = torch.int64 if data.task is Task.multiclass else dtype
        # train rows, then val rows: the evaluation's one forward pass; training uses a view
        n_train = len(data.x_train)
        np_dtype = inputs.config.train.dtype.value
        x_eval = torch.as_tensor(evaluation_inputs(data, np_dtype), device=device)
        x_train = x_eval[:n_train]
        y_train = torch.as_tensor(data.y_train, dtype=y_dtype, device=device)
        y_val = torch.as_tensor(data.y_val, dtype=y_dtype, device=device)

        net = _model(inputs, dtype)
        loss = _loss(inputs.loss)
        batches, steps = _epoch_batches(inputs, x_train, y_train)

        @torch.no_grad()  # one pass in eval mode, gradients off
        def outputs() -> tuple[torch.Tensor, ...]:
            net.eval()
            try:
                return evaluate_outputs(
                    lambda x: _logits_and_output(net, x),
                    loss,
                    _activate,
                    inputs.head_after_model,
                    x_eval,
                    n_train,
                    y_val,
                )
            finally:
                net.train()

        def evaluate() -> Evaluation:
            val_loss, *predictions = outputs()
            train_pred, val_pred, val_logits = (t.cpu().numpy() for t in predictions)
            return Evaluation(float(val_loss), train_pred, val_pred, val_logits)

        reporter = EpochReporter(inputs, steps, evaluate, lambda: _weights(net), on_epoch)
        system = System(inputs, net, loss, reporter)
        batches.system = system
        trainer = L.Trainer(
            max_epochs=inputs.config.train.epochs,
            accelerator="gpu" if self.use_gpu else "cpu",
            devices=1,
            precision="64-true" if dtype is torch.float64 else "32-true",
            logger=False,  # the harness is the only writer
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            deterministic=True,
        )
        trainer.fit(system, train_dataloaders=batches)
        # the plain torch layers (no harness class inside): loading them needs torch only
        kept = net.layers if inputs.keep_model else None
        return TrainedModel(final_weights=_weights(net), model=kept, model_flavor="pytorch")

    @contextmanager
    def forward(self, inputs: TrainInputs, x: np.ndarray) -> Iterator[Callable[[], np.ndarray]]:
        """The plain nn.Module the Lightning system trains, called under no_grad."""
        dtype = _DTYPES[inputs.config.train.dtype.value]
        device = torch.device("cuda" if self.use_gpu else "cpu")
        net = _model(inputs, dtype).to(device).eval()
        xs = torch.as_tensor(x, dtype=dtype, device=device)

        @torch.no_grad()
        def call() -> np.ndarray:
            return net(xs).cpu().numpy()  # .cpu() waits for the device

        yield call
