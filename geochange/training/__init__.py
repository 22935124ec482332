"""Training the autoencoder and the diffusion model on folders of image + mask tiles, or on a
pack of their crops (``python -m geochange.training``, no GIS packages needed)."""
