"""One module per command group; each turns arguments into calls on the packages and prints results."""
