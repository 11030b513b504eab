"""The math core: NumPy only; knows nothing about text, files or the terminal."""
