"""The signature split of exchange.gateway.auth: its fast path (one signature, the last pair) gives what the
general rule gives (every pair named ``signature`` removed, the last one's value taken, query then body)."""
import random

from exchange.gateway.auth import _split_signature, _split_signature_pairs as _general


def test_usual_requests():
    for split in (_split_signature, _general):  # the fast path and the general rule, on hand-written cases
        assert split("", "symbol=BTCUSDT&timestamp=1&signature=ab12") == ("symbol=BTCUSDT&timestamp=1", "ab12")
        assert split("timestamp=1&signature=ab12", "") == ("timestamp=1", "ab12")
        assert split("a=1", "b=2&signature=x") == ("a=1b=2", "x")  # query + body, as Binance signs them
        assert split("signature=q", "b=2&signature=x") == ("b=2", "x")  # the body's, the last one
        assert split("", "b=signature=z&signature=x") == ("b=signature=z", "x")
        assert split("", "b=2&xsignature=x") == ("b=2&xsignature=x", None)


def test_matches_the_general_rule_on_any_shape():
    pieces = ["a=1", "signature=abc", "xsignature=q", "b=signature=z", "signature=", "c=2", "&", "", "signature=de&f"]
    rng = random.Random(12)
    for _ in range(20_000):
        query = "&".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        body = "&".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        assert _split_signature(query, body) == _general(query, body), (query, body)
