"""Training: the accelerate loop and the two stages."""
