"""Writes scores.jsonl and scores_valid.jsonl: made-up DNA sequences, each with a number, for
regression (`rnncli train` on {"text", "target"} records). Run once; the outputs are committed.

    python sample_data/make_scores.py

A sequence's score follows rules a recurrent model can find, as a promoter's strength follows
its motifs: +1 for each TATA box, +0.5 for each TTGACA (the -35 hexamer's consensus), minus how
far its GC content is from 40 %, plus a little noise. The sequences are random letters.
"""

import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def record(rng):
    letters = [rng.choice("ACGT") for _ in range(rng.randint(30, 40))]
    for motif in rng.sample(["TATA", "TATA", "TTGACA", "TTGACA", ""], rng.randint(0, 3)):
        at = rng.randint(0, len(letters) - len(motif))
        letters[at : at + len(motif)] = motif
    text = "".join(letters)
    gc = (text.count("G") + text.count("C")) / len(text)
    score = text.count("TATA") + 0.5 * text.count("TTGACA") - 4 * abs(gc - 0.4) + rng.gauss(0, 0.05)
    return {"text": text, "target": round(score, 4)}


def write(name, n, seed):
    rng = random.Random(seed)
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(json.dumps(record(rng)) + "\n")


if __name__ == "__main__":
    write("scores.jsonl", 600, seed=1)
    write("scores_valid.jsonl", 150, seed=2)
