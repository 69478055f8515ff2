"""Small random networks for the tests (the closed-form ones live in attribution.examples)."""

import keras


def mlp(n_in: int = 4, n_out: int = 3, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(32, activation="tanh"),
                             keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(n_out)], name="mlp")


def small_cnn(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((12, 12, 2)), keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(3)], name="small_cnn")


def pong_cnn(seed: int = 0) -> keras.Model:
    """A tiny network with the Pong agent's input: raw frames (batch, 4, 84, 84) -> 6 logits."""
    keras.utils.set_random_seed(seed)
    frames = keras.Input((4, 84, 84))
    x = keras.layers.Permute((2, 3, 1))(keras.layers.Rescaling(1 / 255)(frames))
    x = keras.layers.Conv2D(4, 8, strides=8, activation="relu")(x)
    logits = keras.layers.Dense(6)(keras.layers.Flatten()(x))
    return keras.Model(frames, {"logits": logits}, name="pong_cnn")
