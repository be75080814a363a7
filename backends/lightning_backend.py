"""PyTorch Lightning: a plain nn.Module wrapped by a LightningModule, a quiet Trainer.

Reads like a translation of keras_backend.py: same sections, same order.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from backends.base import (
    EpochRecord,
    History,
    OnEpoch,
    TrainInputs,
    probabilities_after_model,
    thread_count,
)
from harness.core.config import Activation, Device, OptimizerName, Task
from harness.core.data import batch_indices
from harness.core.init import Weights

import torch  # noqa: E402
import lightning as L  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

# The Trainer's banners ("GPU available...", tips) are not the user's business.
for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module=r"lightning(\..*)?")

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _configure_process(inputs: TrainInputs) -> dict[str, str]:
    train = inputs.spec.train
    want = Device(train.device)
    has_gpu = torch.cuda.is_available()
    if want is Device.gpu and not has_gpu:
        raise RuntimeError("train.device=gpu, but torch sees no CUDA GPU; use train.device=cpu")
    use_gpu = has_gpu and want is not Device.cpu
    # torch's intra-op threads gain nothing on 25-unit layers, and OpenMP's spinning made an
    # epoch 10x slower (108 ms -> 1084 ms, digits 0-9) on a busy 2-core machine: default 1
    threads = thread_count(inputs.spec, cap=1)
    torch.set_num_threads(threads)
    return {
        "device": f"gpu:{torch.cuda.get_device_name(0)}" if use_gpu else "cpu",
        "threads": str(threads),
    }


class MLP(nn.Module):
    """The network itself: Linear layers and activations, nothing about training."""

    def __init__(self, sizes: list[int], hidden_activation: Activation, output: Activation):
        super().__init__()
        acts = {
            Activation.sigmoid: nn.Sigmoid,
            Activation.relu: nn.ReLU,
            Activation.linear: nn.Identity,
            Activation.softmax: lambda: nn.Softmax(dim=-1),
        }
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            layers += [nn.Linear(fan_in, fan_out), acts[output if last else hidden_activation]()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]


def _loss(task: Task, from_logits: bool, eps: float):
    """The same losses Keras computes, including its clipping of probabilities."""
    if task is Task.regression:
        return F.mse_loss
    if task is Task.multiclass:
        if from_logits:
            return F.cross_entropy
        # Keras: log of the clipped probabilities, then softmax cross-entropy on those logs
        return lambda p, y: F.cross_entropy(torch.log(p.clamp(eps, 1 - eps)), y)
    if from_logits:
        return F.binary_cross_entropy_with_logits

    def bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # torch's BCELoss clamps log(p) at -100 instead; Keras clips p to [eps, 1 - eps]
        p = p.clamp(eps, 1 - eps)
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()

    return bce


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
    opt = inputs.spec.optimizer
    if OptimizerName(opt.name) is OptimizerName.gd:
        return torch.optim.SGD(params, lr=opt.lr, momentum=0.0)
    return KerasAdam(params, lr=opt.lr, betas=(opt.beta_1, opt.beta_2), eps=opt.epsilon)


def _model(inputs: TrainInputs, dtype: torch.dtype) -> MLP:
    sizes = [inputs.data.n_features, *inputs.spec.model.hidden, inputs.data.n_outputs]
    net = MLP(sizes, Activation(inputs.spec.model.hidden_activation), inputs.output_activation)
    net = net.to(dtype)  # before copying: a float32 layer would round float64 weights
    with torch.no_grad():
        for layer, (kernel, bias) in zip(net.linears(), inputs.weights):
            layer.weight.copy_(torch.from_numpy(kernel.T.copy()))  # torch stores (out, in)
            layer.bias.copy_(torch.from_numpy(bias))
    return net


def _weights(net: MLP) -> Weights:
    return [
        (layer.weight.detach().cpu().numpy().T.copy(), layer.bias.detach().cpu().numpy().copy())
        for layer in net.linears()
    ]


class EpochBatches:
    """Every epoch's batches in the harness's order, from tensors already on the device."""

    def __init__(self, inputs: TrainInputs, x: torch.Tensor, y: torch.Tensor) -> None:
        spec = inputs.spec
        n = len(inputs.data.x_train)
        self.x, self.y = x, y
        self.epochs = [
            [torch.from_numpy(b).to(x.device) for b in batch_indices(n, spec.train.batch_size, e, spec.seed)]
            for e in range(spec.train.epochs)
        ]
        self.system: L.LightningModule | None = None  # its current_epoch picks the batches

    def __len__(self) -> int:
        return len(self.epochs[0])

    def __iter__(self):
        # Lightning may call iter() more than once per epoch: index by the trainer's epoch
        epoch = self.system.current_epoch if self.system is not None else 0
        return ((self.x[idx], self.y[idx]) for idx in self.epochs[epoch])


class System(L.LightningModule):
    """The training system: loss, optimizer, and the end-of-epoch report."""

    def __init__(self, inputs: TrainInputs, net: MLP, evaluate, steps: int, on_epoch: OnEpoch):
        super().__init__()
        self.inputs, self.net, self.evaluate, self.steps, self.on_epoch = (
            inputs, net, evaluate, steps, on_epoch
        )
        self.loss_fn = _loss(inputs.task, inputs.spec.model.from_logits, inputs.spec.train.prob_clip_eps)
        self.batch_losses: list[torch.Tensor] = []
        self.batch_sizes: list[int] = []
        self.t0 = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        return _optimizer(self.inputs, self.net.parameters())

    def on_train_epoch_start(self) -> None:
        self.batch_losses: list[torch.Tensor] = []
        self.batch_sizes: list[int] = []
        self.t0 = time.perf_counter()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self.net(x), y)
        # kept on the device and reduced once per epoch: no host sync, no extra ops per step
        self.batch_losses.append(loss.detach())
        self.batch_sizes.append(len(x))
        return loss

    def on_train_epoch_end(self) -> None:
        # the epoch's mean loss weighted by batch size, as Keras' loss tracker; a host value,
        # so the clock below is read after the device has finished the epoch
        sizes = torch.tensor(self.batch_sizes, dtype=torch.float64, device=self.device)
        losses = torch.stack(self.batch_losses).double()
        train_loss = float((losses * sizes).sum() / sizes.sum())
        elapsed = time.perf_counter() - self.t0
        val_loss, train_pred, val_pred, val_logits = self.evaluate()  # host values
        eval_time = time.perf_counter() - self.t0 - elapsed
        record = EpochRecord(
            epoch=self.current_epoch + 1,
            train_loss=train_loss,
            val_loss=val_loss,
            train_pred=train_pred,
            val_pred=val_pred,
            epoch_time_s=elapsed,
            steps=self.steps,
            samples=len(self.inputs.data.x_train),
            val_logits=val_logits,
            weights=_weights(self.net) if self.inputs.record_weights else None,
            eval_time_s=eval_time,
        )
        if self.on_epoch(record) is False:
            self.trainer.should_stop = True


class LightningBackend:
    name = "lightning"

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        info = _configure_process(inputs)
        torch.backends.cuda.matmul.allow_tf32 = inputs.spec.train.allow_tf32
        torch.backends.cudnn.allow_tf32 = inputs.spec.train.allow_tf32
        L.seed_everything(inputs.spec.seed, workers=False, verbose=False)
        torch.use_deterministic_algorithms(True)
        info.update(
            framework="lightning",
            lightning_version=L.__version__,
            torch_version=torch.__version__,
        )
        self.use_gpu = info["device"].startswith("gpu")
        return info

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> History:
        spec, data = inputs.spec, inputs.data
        dtype = _DTYPES[spec.train.dtype.value]
        device = torch.device("cuda" if self.use_gpu else "cpu")
        y_dtype = torch.int64 if data.task is Task.multiclass else dtype
        x_train = torch.as_tensor(data.x_train, dtype=dtype, device=device)
        y_train = torch.as_tensor(data.y_train, dtype=y_dtype, device=device)
        x_val = torch.as_tensor(data.x_val, dtype=dtype, device=device)
        y_val = torch.as_tensor(data.y_val, dtype=y_dtype, device=device)

        net = _model(inputs, dtype)
        loss = _loss(data.task, spec.model.from_logits, spec.train.prob_clip_eps)
        batches = EpochBatches(inputs, x_train, y_train)
        post = probabilities_after_model(inputs)

        @torch.no_grad()
        def evaluate() -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
            net.eval()
            train_out = net(x_train)
            val_logits = net.layers[:-1](x_val)  # the last layer's pre-activation
            val_out = net.layers[-1](val_logits)
            net.train()
            val_loss = float(loss(val_out, y_val))
            if post == "sigmoid":
                train_out, val_out = torch.sigmoid(train_out), torch.sigmoid(val_out)
            elif post == "softmax":
                train_out, val_out = torch.softmax(train_out, -1), torch.softmax(val_out, -1)
            return val_loss, train_out.cpu().numpy(), val_out.cpu().numpy(), val_logits.cpu().numpy()

        system = System(inputs, net, evaluate, len(batches), on_epoch)
        batches.system = system
        trainer = L.Trainer(
            max_epochs=spec.train.epochs,
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
        return History(final_weights=_weights(net), model=net.layers, model_flavor="pytorch")

    @contextmanager
    def forward(self, inputs: TrainInputs, x: np.ndarray) -> Iterator[Callable[[], np.ndarray]]:
        """The plain nn.Module the Lightning system trains, called under no_grad."""
        dtype = _DTYPES[inputs.spec.train.dtype.value]
        device = torch.device("cuda" if self.use_gpu else "cpu")
        net = _model(inputs, dtype).to(device).eval()
        xs = torch.as_tensor(x, dtype=dtype, device=device)

        @torch.no_grad()
        def call() -> np.ndarray:
            return net(xs).cpu().numpy()  # .cpu() waits for the device

        yield call
