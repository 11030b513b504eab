"""The micro-batcher: requests that arrive together for one model, with the same options, are
answered in one batch, because a recurrent network reads 32 sentences in little more time than one
(the matrix products grow wider, the number of time steps does not).

A request's job waits `max_wait` seconds for others to join it, and a batch holds at most
`max_batch` inputs. The NumPy work runs in one worker thread, off the event loop, so the server
keeps accepting and streaming while a batch is computed; the requests that arrive meanwhile wait
for it to end and make the next batch (so under load the batches fill up by themselves, and a lone
request waits no longer than max_wait). If a shared batch fails, each job in it is answered alone, so one bad request
never costs the others their answers.
"""

import asyncio
import concurrent.futures


class MicroBatcher:
    """submit(job) -> the job's answers; answer(job, inputs, sources) computes them (serve/answers.py)."""

    def __init__(self, answer, max_batch=64, max_wait=0.002):
        self.answer, self.max_batch, self.max_wait = answer, max_batch, max_wait
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rnncli-batch")
        self.waiting = {}  # key -> [(job, future)] not yet started, the keys in the order they began waiting
        self.busy = False  # a batch is being computed: what arrives meanwhile waits to make the next one
        self.batches = 0  # batches computed (GET /health shows it)

    async def submit(self, job):
        loop = asyncio.get_running_loop()
        if job.key is None:  # answered alone (a seeded sampling decoder)
            return await loop.run_in_executor(self.pool, self.answer, job)
        future = loop.create_future()
        queue = self.waiting.setdefault(job.key, [])
        queue.append((job, future))
        if len(queue) == 1:  # the first of its batch: it starts the batch after max_wait
            loop.create_task(self._run(job.key))
        elif sum(len(j.inputs) for j, _ in queue) >= self.max_batch:
            loop.create_task(self._run(job.key, now=True))
        return await future

    async def _run(self, key, now=False):
        if not now:
            await asyncio.sleep(self.max_wait)
        queue = self.waiting.get(key)
        if self.busy or not queue:
            return  # the batch being computed starts the next when it ends; or a full batch took these
        taken, count = [], 0
        while queue and (not taken or count + len(queue[0][0].inputs) <= self.max_batch):
            taken.append(queue.pop(0))
            count += len(taken[-1][0].inputs)
        if not queue:
            del self.waiting[key]
        self.busy = True
        try:
            await self._answer(taken)
        finally:
            self.busy = False
            waiting = next(iter(self.waiting), None)  # the longest waiting model goes next
            if waiting is not None:
                asyncio.get_running_loop().create_task(self._run(waiting, now=True))

    async def _answer(self, taken):
        loop = asyncio.get_running_loop()
        jobs = [job for job, _ in taken]
        inputs = [x for job in jobs for x in job.inputs]
        sources = [x for job in jobs for x in job.sources]
        self.batches += 1
        try:
            answers = await loop.run_in_executor(self.pool, self.answer, jobs[0], inputs, sources)
        except Exception as e:
            if len(taken) == 1:
                _settle(taken[0][1], exception=e)
                return
            for one in taken:  # alone, so that only the request at fault fails
                await self._answer([one])
            return
        start = 0
        for job, future in taken:
            _settle(future, answers[start:start + len(job.inputs)])
            start += len(job.inputs)

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=False)


def _settle(future, result=None, exception=None):
    if future.done():  # its client has gone (the request was cancelled)
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
