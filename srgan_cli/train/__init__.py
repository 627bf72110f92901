"""Training: the paper's SRResNet (MSE) stage."""
