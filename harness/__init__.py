"""harness: the same neural network through Keras, PyTorch Lightning and NumPy, swept by
Hydra and tracked in MLflow."""

__version__ = "0.1.0"
