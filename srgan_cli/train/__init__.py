"""Training: the paper's SRResNet (content loss) and SRGAN (adversarial) stages."""
