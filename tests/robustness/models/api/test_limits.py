"""Pure parts of the API layer: redaction, Retry-After parsing, backoff, token buckets,
image encoding within limits, letter-score merging."""

from __future__ import annotations

import asyncio
import math
import random
import time

import numpy as np
import pytest

from robustness.errors import ConfigError
from robustness.models.api.failures import (ApiFailure, kind_for_status, parse_retry_after,
                                            retry_delay_from_body)
from robustness.models.api.images import ImageEncoder, ImageLimits, b64_size, encode_image
from robustness.models.api.limits import RetryPolicy, TokenBucket, retry_kinds
from robustness.models.api.scoring import continuation_score, merge_candidate_logprobs
from robustness.models.api.secrets import Secret
from robustness.redaction import redact_text
from robustness.redaction import register_secret
from robustness.data.image import ImageInput


def test_redact_masks_known_and_key_shaped_secrets():
    register_secret("my-very-own-secret-value")
    text = ("key my-very-own-secret-value; sk-proj-abcdefghijklmnop1234; AIzaSyA1234567890abcdefghij; "
            "Authorization: Bearer abc.def.ghi123; https://h/x?key=zzz123&b=1; http://u:pw@host/")
    out = redact_text(text)
    for secret in ("my-very-own-secret-value", "sk-proj-abcdefghijklmnop1234",
                   "AIzaSyA1234567890abcdefghij", "abc.def.ghi123", "zzz123", "pw@"):
        assert secret not in out
    assert "b=1" in out and "host/" in out  # the rest of the message survives
    benign = "task-assessment-protocol and risk-analysis"
    assert redact_text(benign) == benign


def test_secret_never_prints():
    s = Secret("sk-supersecret-0000000000")
    assert "supersecret" not in repr(s) + str(s) + f"{s}"
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(s)


def test_api_failure_detail_is_redacted_and_bounded():
    f = ApiFailure("server_error", "boom sk-abcdefghijklmnopqrstu " + "x" * 2000)
    assert "sk-abcdefghijklmnopqrstu" not in str(f) and len(f.detail) <= 500


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after({"retry-after": date}) <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None
    body = {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                   "retryDelay": "17s"}]}}
    assert retry_delay_from_body(body) == 17.0


@pytest.mark.parametrize("status,kind", [(429, "rate_limit"), (500, "server_error"),
                                         (503, "server_error"), (529, "server_error"),
                                         (408, "timeout"), (401, "auth"), (403, "auth"),
                                         (404, "not_found"), (400, "bad_request")])
def test_status_kinds(status, kind):
    assert kind_for_status(status) == kind


def test_content_filter_code_wins():
    assert kind_for_status(400, "content_filter") == "content_filter"


def test_backoff_grows_with_jitter_and_respects_retry_after():
    policy = RetryPolicy(max_retries=5, initial_backoff_s=1.0, max_backoff_s=8.0)
    rng = random.Random(0)
    plain = ApiFailure("server_error", "x")
    for attempt, cap in enumerate([1, 2, 4, 8, 8]):
        delays = [policy.delay(plain, attempt, rng) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays) and len(set(delays)) > 1
    told = ApiFailure("rate_limit", "x", retry_after=3.0)
    assert 3.0 <= policy.delay(told, 0, rng) <= 3.3
    assert policy.delay(ApiFailure("rate_limit", "x", retry_after=1e6), 0, rng) <= 330
    assert policy.should_retry(plain, 4) and not policy.should_retry(plain, 5)
    assert not policy.should_retry(ApiFailure("malformed", "x"), 0)


def test_retry_kinds_are_validated():
    assert retry_kinds(["timeout", "malformed"]) == ("timeout", "malformed")
    with pytest.raises(ConfigError):
        retry_kinds(["refusal"])


def test_token_bucket_waits_for_refill():
    async def run():
        bucket = TokenBucket(per_minute=600)  # 10/s, burst 100
        bucket.level = 0.0
        start = time.monotonic()
        await bucket.take(2)
        return time.monotonic() - start

    assert 0.15 <= asyncio.run(run()) <= 1.0


def test_encode_image_fits_budgets_and_sides():
    noisy = ImageInput(np.random.default_rng(1).integers(0, 256, (400, 300, 3), dtype=np.uint8))
    small = encode_image(noisy, budget=30_000, max_side=None)
    assert small.media_type == "image/jpeg" and b64_size(len(small.data)) <= 30_000
    capped = encode_image(noisy, budget=10**9, max_side=100)
    assert capped.media_type == "image/png" and max(capped.width, capped.height) == 100
    flat = ImageInput(np.zeros((50, 50), dtype=np.uint8))
    assert encode_image(flat, budget=10**6).data == flat.png_bytes()


def test_encoder_splits_the_request_budget_and_caches():
    limits = ImageLimits(max_bytes=40_000, max_total_bytes=50_000)
    noisy = ImageInput(np.random.default_rng(2).integers(0, 256, (200, 200), dtype=np.uint8))
    enc = ImageEncoder(limits)
    two = enc.encode_all([noisy, noisy])
    assert sum(b64_size(len(e.data)) for e in two) <= 50_000
    assert enc.encode_all([noisy, noisy])[0] is two[0]


def test_letter_variants_merge_by_logsumexp():
    top = [("A", math.log(0.5)), (" A", math.log(0.2)), ("B", math.log(0.1)),
           ("a", math.log(0.1)), (" B\n", math.log(0.05))]
    merged = merge_candidate_logprobs(top, ("A", "B", "C"))
    assert math.exp(merged["A"]) == pytest.approx(0.7)  # lowercase "a" is a different token
    assert math.exp(merged["B"]) == pytest.approx(0.15)
    assert merged["C"] == -math.inf


def test_continuation_score_counts_tokens_from_the_end():
    positions = [None, {"1": {"logprob": -1.0, "decoded_token": "Q"}},
                 {"2": {"logprob": -0.5, "decoded_token": " left"}},
                 {"3": {"logprob": -0.25, "decoded_token": " side"}}]
    score = continuation_score(positions, "left side")
    assert score.n_tokens == 2 and score.logprob == -0.75 and score.n_chars == 9
    with pytest.raises(ApiFailure):
        continuation_score(positions, "much longer than the prompt")
    with pytest.raises(ApiFailure):
        continuation_score(None, "x")
