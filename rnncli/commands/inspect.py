"""rnncli inspect: what a checkpoint holds, as data."""

from rnncli.models import read_checkpoint
from rnncli.tasks.registry import task_named


def inspect_model(model_path):
    """-> info dict: task, architecture, parameter arrays by layer, data, config, history."""
    meta, groups = read_checkpoint(model_path)
    params = groups["param"]
    cfg, data, task = meta["config"], meta["data"], meta.get("task")
    layers = {}
    for name, arr in params.items():
        layer, _, short = name.rpartition(".")
        layers.setdefault(layer, []).append([short, list(arr.shape), int(arr.size)])
    best = meta.get("best_score")
    return {"path": str(model_path), "task": task, "cell": cfg.get("cell"), "layers": cfg.get("layers"),
            "hidden": cfg.get("hidden"), "parameters": int(sum(a.size for a in params.values())),
            "arrays": layers, "vocab_size": len(data["vocab"]), "level": data.get("level"),
            "format": data.get("format"), "vocab_preview": data["vocab"][4:24],
            "names": {**{k: data[k] for k in ("labels", "tags") if k in data},
                      **({"scores (training mean, sd)": [f"{n} ({m:.4g}, {s:.4g})" for n, m, s in zip(
                          data["score_names"], data["score_mean"], data["score_std"], strict=True)]}
                         if "score_names" in data else {}),
                      **({"frames": [f"D = {data['frame_dim']}, normalised per dimension (training mean and sd)"]
                          + ([f"log-mel of {a['sample_rate']:,} Hz audio: {a['bands']} bands, {a['window_ms']:g} ms "
                              f"windows every {a['hop_ms']:g} ms{', deltas' if a['deltas'] else ''}"
                              f"{f', floored {t:g} dB under the loudest' if (t := a.get('top_db')) else ''}"]
                             if (a := data.get("audio")) else [])}
                         if data.get("input") == "frames" else {})},
            "target": None if "target_vocab" not in data else {"level": data["target_level"],
                                                               "vocab_size": len(data["target_vocab"]),
                                                               "vocab_preview": data["target_vocab"][4:24]},
            "steps": meta.get("step"), "epochs": meta.get("epoch"),
            "best_score": None if best is None else task_named(task).reported_score(best),
            "best_step": meta.get("best_step"), "train_time_s": meta.get("elapsed"), "config": cfg,
            "history": meta.get("history", []),
            "pretrained": None if "pretrained" not in data else {
                **data["pretrained"], "rows_added": len(data.get("pretrained_vocab") or ()),
                "bytes_added": len(data.get("pretrained_vocab") or ()) * data["pretrained"]["dim"]
                * params[_table(task)].itemsize}}


def _table(task):
    from rnncli.pretrained import table_name

    return table_name(task)
