"""The micro-batcher alone (serve/batcher.py), with a stand-in for the model: jobs of one key share
a batch in their order and get their own answers back; a job that makes its batch fail is answered
alone with its error, and the others of that batch still get theirs."""

import asyncio
import typing

from rnncli.serve.batcher import MicroBatcher


class Job(typing.NamedTuple):
    key: tuple | None
    inputs: list
    sources: list = []


def run(jobs, answer, max_batch=64, max_wait=0.01):
    calls = []

    def recorded(job, inputs=None, sources=None):
        inputs = job.inputs if inputs is None else inputs
        calls.append(list(inputs))
        return answer(inputs)

    async def main():
        batcher = MicroBatcher(recorded, max_batch, max_wait)
        try:
            return await asyncio.gather(*(batcher.submit(j) for j in jobs), return_exceptions=True)
        finally:
            batcher.close()

    return asyncio.run(main()), calls


def test_jobs_of_one_key_share_a_batch_and_keep_their_own_answers():
    jobs = [Job(("m",), [f"x{k}", f"y{k}"]) for k in range(5)] + [Job(("other",), ["z"])]
    got, calls = run(jobs, lambda xs: [x.upper() for x in xs])
    assert got == [[f"X{k}", f"Y{k}"] for k in range(5)] + [["Z"]]
    assert sorted(map(len, calls)) == [1, 10]  # one batch per key


def test_a_batch_holds_at_most_max_batch_inputs():
    jobs = [Job(("m",), [k, k]) for k in range(10)]
    got, calls = run(jobs, lambda xs: [-x for x in xs], max_batch=6)
    assert got == [[-k, -k] for k in range(10)]
    assert max(map(len, calls)) <= 6 and sum(map(len, calls)) == 20


def test_a_failing_job_is_answered_alone_and_the_others_are_answered():
    def answer(xs):
        if "bad" in xs:
            raise ValueError("cannot read 'bad'")
        return [len(x) for x in xs]

    jobs = [Job(("m",), ["a"]), Job(("m",), ["bad"]), Job(("m",), ["ccc"])]
    got, calls = run(jobs, answer)
    assert got[0] == [1] and got[2] == [3]
    assert isinstance(got[1], ValueError) and "bad" in str(got[1])
    assert calls[0] == ["a", "bad", "ccc"] and ["a"] in calls and ["ccc"] in calls


def test_a_job_without_a_key_is_never_batched():
    jobs = [Job(None, ["a"]), Job(None, ["b"])]
    got, calls = run(jobs, lambda xs: xs)
    assert got == [["a"], ["b"]] and calls == [["a"], ["b"]]


def test_an_address_other_machines_reach_without_a_token_is_warned_of():
    from rnncli.commands.serve import exposure_warning

    assert exposure_warning("0.0.0.0", None) and exposure_warning("192.168.1.5", None)
    assert "no --token" in exposure_warning("::", None)
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert exposure_warning(host, None) is None
    assert exposure_warning("0.0.0.0", "a-long-token") is None
