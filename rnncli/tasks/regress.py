"""Many-to-one regression: a sequence in, one or more numbers out (a promoter's measured
transcription rate, a review's stars).

    ids (T, B) -> embedding -> recurrent stack -> pool -> y_hat = W a + b     (B, K)

The classifier's network (tasks/classify.py) with a linear head of K outputs and the mean
squared error in place of cross-entropy. The model learns standardised scores, z = (y - mean) / sd
with the training split's mean and sd per score (text/encode.py), so that one learning rate fits
every unit; `predict` turns its z back into the scores' own units.
"""

import json

import numpy as np

from rnncli.nn.losses import mean_squared_error
from rnncli.tasks.classify import Classifier, ManyToOneTask
from rnncli.tasks.task import reader_options


class Regressor(Classifier):
    def __init__(self, vocab_size, num_scores, rng, score_mean=None, score_std=None, **network):
        super().__init__(vocab_size, 0, rng, outputs=num_scores, **network)
        self.num_scores = num_scores
        self.score_mean = np.zeros(num_scores) if score_mean is None else np.asarray(score_mean, np.float64)
        self.score_std = np.ones(num_scores) if score_std is None else np.asarray(score_std, np.float64)

    def standardise(self, scores):
        """(B, K) scores in their units -> what the head learns to output."""
        return ((scores - self.score_mean) / self.score_std).astype(self.dtype)

    def head_loss(self, z_hat, scores):
        """scores (B, K) in their own units -> (mean squared error of the standardised scores, its
        gradient (B, K)); Classifier.loss_and_grads runs the rest."""
        return mean_squared_error(z_hat, self.standardise(scores))

    def predict(self, ids, mask):
        """(B, K) scores in their own units (float64)."""
        z_hat, _ = self.forward(ids, mask, for_backward=False)
        return z_hat.astype(np.float64) * self.score_std + self.score_mean


class RegressionTask(ManyToOneTask):
    name, title, format = "regress", "regression", "scores"
    graph = "regress_graph"  # export/onnx_graph.py
    text_picture, frames_picture = "regress_picture", "regress_frames"  # commands/show.py
    report = "regress_report"  # render.py: eval's tables
    score_name = "loss (standardised MSE)"

    def build(self, cfg, data_meta, rng, V, dtype):
        model = Regressor(V, len(data_meta["score_names"]), rng, score_mean=data_meta["score_mean"],
                          score_std=data_meta["score_std"], pool=cfg.pool, word_dropout=cfg.word_dropout,
                          **reader_options(cfg, data_meta, dtype))
        model.label_names, model.score_names = None, data_meta["score_names"]
        return model

    def names_needed(self, cfg):
        return {"score_names": 1}

    def check_data(self, check, data):
        check.mean_and_sd(data, "score", len(data["score_names"]))

    def make_batch(self, split, index, char_features=False):
        from rnncli.text.batching import scored_batch

        return scored_batch(split, index)

    def synthetic_names(self, vocab, K):
        return {"score_names": [f"target[{k}]" for k in range(K)], "score_mean": [0.0] * K, "score_std": [1.0] * K}

    def random_outputs(self, meta, cfg, rng, inputs, mask):
        return inputs, mask, rng.normal(size=(mask.shape[1], len(meta["score_names"])))

    def scores(self, model, split, fmt, char_features, world, decode_sample, references):
        from rnncli.evaluate import evaluate_regression

        return evaluate_regression(model, split, world)

    def predict(self, model, split, char_features=False, proba=False):
        from rnncli.evaluate import predict_scores

        return predict_scores(model, split), None

    def answer(self, prediction):
        return {"scores": prediction.tolist()}

    def answer_names(self, model):
        return model.score_names

    def prediction_text(self, record, names, proba=False, as_json=False):
        """One line per input line: the scores, tab-separated (an empty line for an empty one)."""
        if as_json:
            values = record.get("scores")
            return json.dumps({"scores": None if values is None else dict(zip(names, map(float, values),
                                                                              strict=True))}) + "\n"
        return "\t".join(f"{v:.6g}" for v in record.get("scores", ())) + "\n"
