"""Deep learning with MONAI/PyTorch: config, data, training, inference, uncertainty."""
