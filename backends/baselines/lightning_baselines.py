"""The bench's PyTorch baselines: textbook Lightning, Lightning's lightest, a torch loop."""

from __future__ import annotations

import tempfile
import time

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from backends.baselines import HIDDEN, LR, digits


def _model(n_in: int) -> nn.Sequential:
    sizes = [n_in, *HIDDEN]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 10))


class _Module(L.LightningModule):
    """The network, Adam, and the clock after every epoch; `self.log` per step if asked."""

    def __init__(self, n_in: int, log_every_step: bool) -> None:
        super().__init__()
        self.net = _model(n_in)
        self.log_every_step = log_every_step
        self.stamps: list[float] = []

    def training_step(self, batch, batch_idx):
        xb, yb = batch
        loss = F.cross_entropy(self.net(xb), yb)
        if self.log_every_step:
            self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_end(self):
        self.stamps.append(time.perf_counter())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LR)


def torch_loop(batch: int | None, epochs: int) -> list[float]:
    """A minimal hand-written PyTorch loop on in-memory tensors."""
    x, y = digits()
    bs = batch or len(x)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = _model(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    stamps = []
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        float(loss)
        stamps.append(time.perf_counter())
    return stamps


def textbook_fit(batch: int | None, epochs: int) -> list[float]:
    """The tutorial way: DataLoader, per-step self.log, a default Trainer (logger, checkpoints)."""
    x, y = digits()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=batch or len(x),
        shuffle=True,
    )
    module = _Module(x.shape[1], log_every_step=True)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(max_epochs=epochs, default_root_dir=tmp, enable_progress_bar=False)
        trainer.fit(module, loader)
    return module.stamps


def lightest_fit(batch: int | None, epochs: int) -> list[float]:
    """Lightning's lightest: in-memory batches, no logging, nothing the Trainer does alone."""
    x, y = digits()
    bs = batch or len(x)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    class Batches:
        def __len__(self):
            return -(-len(x) // bs)

        def __iter__(self):
            perm = torch.randperm(len(x))
            return ((xt[perm[i : i + bs]], yt[perm[i : i + bs]]) for i in range(0, len(x), bs))

    module = _Module(x.shape[1], log_every_step=False)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, Batches())
    return module.stamps
