"""The command-line front door: wires rigs, capture, annotate and train together; holds no logic."""
