"""Human review of clip pairs in Label Studio, and the gate that decides what reaches training."""
