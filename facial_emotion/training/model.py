"""The Xception-family network for 48x48 gray faces (mini-Xception line), built-in Keras layers only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facial_emotion.types import NUM_EMOTIONS

LAST_CONV_LAYER = "last_conv"
"""Name of the final feature map used by Grad-CAM."""


def build_xception(
    *,
    stem_filters: int = 16,
    block_filters: Sequence[int] = (32, 64, 128, 256),
    dropout: float = 0.3,
    l2: float = 1e-4,
    seed: int = 1337,
) -> Any:
    """Build a mini-Xception: conv stem, depthwise-separable residual blocks, GAP head.

    Input (None,48,48,1) raw 0-255 gray; a Rescaling layer maps to [-1,1]. Output (None,7) softmax.
    """
    import keras
    from keras import layers

    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    init = keras.initializers.HeNormal(seed=seed)

    def conv_bn_relu(x: Any, filters: int, name: str) -> Any:
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=init,
            kernel_regularizer=reg,
            name=f"{name}_conv",
        )(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    def sep_bn(x: Any, filters: int, name: str) -> Any:
        x = layers.SeparableConv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            depthwise_initializer=init,
            pointwise_initializer=init,
            depthwise_regularizer=reg,
            pointwise_regularizer=reg,
            name=f"{name}_sep",
        )(x)
        return layers.BatchNormalization(name=f"{name}_bn")(x)

    inputs = keras.Input(shape=(48, 48, 1), name="face")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inputs)
    x = conv_bn_relu(x, stem_filters, "stem1")
    x = conv_bn_relu(x, stem_filters, "stem2")
    for i, filters in enumerate(block_filters):
        name = f"block{i + 1}"
        # Average-pool then 1x1 conv (ResNet-D shortcut): TF 2.21's oneDNN path corrupts memory when
        # training a strided 1x1 convolution, and pooling first keeps all the input in the shortcut.
        residual = layers.AveragePooling2D(2, padding="same", name=f"{name}_skip_pool")(x)
        residual = layers.Conv2D(
            filters, 1, use_bias=False, kernel_initializer=init, kernel_regularizer=reg, name=f"{name}_skip"
        )(residual)
        residual = layers.BatchNormalization(name=f"{name}_skip_bn")(residual)
        y = sep_bn(x, filters, f"{name}_a")
        y = layers.Activation("relu", name=f"{name}_a_relu")(y)
        y = sep_bn(y, filters, f"{name}_b")
        y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(y)
        x = layers.Add(name=f"{name}_add")([y, residual])
    x = sep_bn(x, block_filters[-1], "exit")
    x = layers.Activation("relu", name=LAST_CONV_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    # float32 softmax even under a mixed_bfloat16 policy: bfloat16 probabilities lose the small classes.
    outputs = layers.Dense(NUM_EMOTIONS, activation="softmax", kernel_regularizer=reg, dtype="float32", name="emotion")(
        x
    )
    return keras.Model(inputs, outputs, name="emotion_xception")
