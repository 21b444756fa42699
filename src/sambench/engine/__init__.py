"""The evaluation engine: encode once, decode every object under every strategy."""
