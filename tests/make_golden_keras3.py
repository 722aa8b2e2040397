"""Make tests/data/keras3_chain.keras and golden_keras3.npz: a Keras 3 archive and its outputs.

    pip install tensorflow && python tests/make_golden_keras3.py

A small VGG-style Functional model with 11 convolutions (so Keras 3 names their weight groups
conv2d ... conv2d_10, which HDF5 lists as conv2d, conv2d_1, conv2d_10, conv2d_2, ...), pools
between blocks, a separate ReLU layer, a convolution without activation, Dropout, a Flatten
over a 2x2 map (so the H, W, C -> C, H, W permutation matters), two Dense layers and a final
softmax. Saved by Keras itself (model.save and model.save_weights); the golden is Keras'
output for two random 16x16 images (RGB in [0, 1], preprocessing "none").
"""
import os

import numpy as np
import keras
from keras import layers

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    widths = ((4, 5, 6), (7, 8, 3, 4), (5, 6, 7, 4))
    for b, block in enumerate(widths):
        for i, F in enumerate(block):
            plain = b == 1 and i == 1           # one conv without activation, then a ReLU layer
            x = layers.Conv2D(F, 3, padding="same", activation=None if plain else "relu",
                              kernel_initializer="he_normal", bias_initializer="random_normal")(x)
            if plain:
                x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(9, activation="relu", kernel_initializer="he_normal", bias_initializer="random_normal")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(5, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    model = keras.Model(inputs, outputs)
    model.save(os.path.join(HERE, "data", "keras3_chain.keras"))
    rng = np.random.default_rng(3)
    images = np.stack([rng.uniform(0, 1, (16, 16, 3)), np.tile(np.linspace(0, 1, 16)[:, None, None], (1, 16, 3))])
    images = images.astype(np.float32)
    probabilities = model.predict(images, verbose=0)
    np.savez_compressed(os.path.join(HERE, "data", "golden_keras3.npz"),
                        pixels=images.transpose(0, 3, 1, 2), probabilities=probabilities)
    print("wrote tests/data/keras3_chain.keras, golden_keras3.npz", probabilities.round(3))


if __name__ == "__main__":
    main()
