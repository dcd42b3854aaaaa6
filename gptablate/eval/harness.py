"""Log-likelihood requests, batched, with lm-evaluation-harness's conventions.

A request is (context, continuation) text. They are encoded together and split the way
lm-eval's `_encode_pair` does: trailing spaces of the context move to the continuation,
the context is encoded alone and the continuation is what the whole adds to it; an empty
context is <|endoftext|>. The model sees the last block_size tokens of
context + continuation minus its final token, and the continuation's log-probabilities
are read off the last len(continuation) positions, over the real vocabulary only.

Requests are scored longest first (batches pad little), and requests with the same input
share one forward pass (e.g. single-token choices after one context).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.tokenizer import EOT, get_tokenizer


@dataclass(frozen=True)
class Request:
    context: list[int]
    continuation: list[int]


@dataclass(frozen=True)
class Result:
    loglikelihood: float
    is_greedy: bool  # every continuation token is the argmax


def encode_pair(context: str, continuation: str) -> Request:
    enc = get_tokenizer()
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    if not context:
        return Request([EOT], enc.encode_ordinary(continuation))
    whole = enc.encode_ordinary(context + continuation)
    ctx = enc.encode_ordinary(context)
    return Request(ctx, whole[len(ctx):])


def rolling_windows(tokens: list[int], max_len: int) -> list[Request]:
    """Disjoint windows that score every token once (lm-eval's loglikelihood_rolling).

    The first window predicts tokens[:max_len] from <|endoftext|> + tokens; each next one
    predicts the following max_len tokens with the window's input ending just before the
    last of them, so the final, shorter window still sees a full block of context.
    """
    out = []
    if not tokens:
        return out
    first = min(max_len, len(tokens))
    out.append(Request([EOT], tokens[:first]))  # input <|endoftext|> + tokens[:first - 1]
    predicted = first
    while predicted < len(tokens):
        n = min(len(tokens) - predicted, max_len)
        end = predicted + n
        window = tokens[end - max_len - 1:end]  # the block before each predicted token, and the tokens
        out.append(Request(window[:-n], window[-n:]))
        predicted = end
    return out


class Scorer:
    """Scores requests with a model that maps token ids (B, T) to logits (B, T, V)."""

    def __init__(self, logits_fn, block_size: int, vocab_size: int, device: torch.device,
                 batch_size: int = 32, autocast=None):
        self.logits_fn, self.T, self.V = logits_fn, block_size, vocab_size
        self.device, self.batch_size = device, batch_size
        self.autocast = autocast or contextlib.nullcontext()

    def _inputs(self, r: Request) -> tuple[tuple[int, ...], int]:
        whole = (r.context + r.continuation)[-(self.T + 1):]
        return tuple(whole[:-1]), len(r.continuation)

    @torch.no_grad()
    def score(self, requests: list[Request]) -> list[Result]:
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(requests):
            if not r.continuation:
                raise ValueError("a request with an empty continuation has no log-likelihood")
            groups.setdefault(self._inputs(r)[0], []).append(i)
        order = sorted(groups, key=len, reverse=True)  # longest first: batches pad little
        results: list[Result | None] = [None] * len(requests)
        for b in range(0, len(order), self.batch_size):
            batch = order[b:b + self.batch_size]
            width = len(batch[0])
            ids = torch.full((len(batch), width), EOT, dtype=torch.long)
            for row, inp in enumerate(batch):
                ids[row, : len(inp)] = torch.tensor(inp)  # right padding: causal rows ignore it
            with self.autocast:
                logits = self.logits_fn(ids.to(self.device))
            logprobs = F.log_softmax(logits[..., : self.V].float(), dim=-1)
            argmax = logprobs.argmax(-1)
            index, lls, greedy = [], [], []
            for row, inp in enumerate(batch):
                for i in groups[inp]:
                    cont = requests[i].continuation
                    n = min(len(cont), len(inp))  # a continuation longer than the block keeps its right end
                    target = torch.tensor(cont[-n:], device=logprobs.device)
                    span = slice(len(inp) - n, len(inp))  # the positions that predict it
                    lls.append(logprobs[row, span].gather(-1, target[:, None]).sum())
                    greedy.append((argmax[row, span] == target).all())
                    index.append(i)
            for i, ll, g in zip(index, torch.stack(lls).tolist(), torch.stack(greedy).tolist()):  # one transfer
                results[i] = Result(ll, bool(g))
        return results
