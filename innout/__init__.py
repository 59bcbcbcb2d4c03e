"""In-N-Out studio: faithful 3D GAN inversion of face videos with out-of-distribution objects."""

__version__ = "0.1.0"
