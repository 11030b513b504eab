"""rnncli: RNN, GRU and LSTM from scratch in NumPy, driven from the command line."""

__version__ = "0.2.0"
