"""The lecture's RNN architectures built from nn/ pieces: many-to-many LM, many-to-one, Tx = Ty."""
