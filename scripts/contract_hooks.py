"""schemathesis hooks for scripts/contract.sh (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key is unique per request by its nature: one reused for a different request
gets a 422 (tests/it/operator_api.rs covers that). The fuzzer draws keys from the header's
pattern, so it draws the same few short keys over and over, and nearly every mutation it sent
was that 422 instead of reaching the handler. Before each call of a positive case, a valid key
is made unique (a sequence number appended: still valid). Negative cases are sent as generated:
editing one would make schemathesis judge it again as a positive case (and re-add a header the
case left out on purpose, such as Authorization); a 422 is a fine answer to them anyway.
"""

import itertools
import re

import schemathesis

# The pattern and length the OpenAPI document states for the header (src/api/operator.rs).
VALID_KEY = re.compile(r"^[\t\x20-\x7E]*[\x21-\x7E][\t\x20-\x7E]*$")
MAX_KEY = 200
_sequence = itertools.count()


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    meta = case.meta
    if not headers or meta is None or meta.generation.mode.is_negative:
        return
    for name in list(headers):
        key = headers[name]
        if name.lower() != "idempotency-key" or not isinstance(key, str):
            continue
        if len(key) <= MAX_KEY and VALID_KEY.match(key):
            suffix = f"-{next(_sequence)}"
            headers[name] = key[: MAX_KEY - len(suffix)] + suffix
