"""What each verb does, between parsing its options (cli.py) and showing its results
(render.py): one module per command, returning data and printing nothing. Tests call these."""
