"""Training, evaluation and Grad-CAM for the FER2013 emotion model (TensorFlow loads only when used).

Notebook use::

    from facial_emotion.training.train import TrainConfig, train
    result = train(TrainConfig.quick(), Path("runs/quick"))
"""

from __future__ import annotations
