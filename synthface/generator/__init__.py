"""The GAN and what surrounds it: presets, networks, the Lightning module and its data,
DiffAugment, training, weights, sampling, steering, directions, evaluation, alignment."""
