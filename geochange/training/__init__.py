"""Training the autoencoder and the diffusion model on folders of image + mask tiles."""
