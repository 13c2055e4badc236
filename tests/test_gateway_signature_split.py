"""The signature split of exchange.gateway.auth: its fast path (one signature, the last pair) gives what the
general rule gives (every pair named ``signature`` removed, the last one's value taken, query then body)."""
import random

from exchange.gateway.auth import _split_signature


def _general(raw_query, raw_body):
    signature, parts = None, []
    for source in (raw_query, raw_body):
        if source:
            kept = []
            for pair in source.split("&"):
                if pair.startswith("signature="):
                    signature = pair[len("signature="):]
                else:
                    kept.append(pair)
            parts.append("&".join(kept))
    return "".join(parts), signature


def test_usual_requests():
    assert _split_signature("", "symbol=BTCUSDT&timestamp=1&signature=ab12") == ("symbol=BTCUSDT&timestamp=1", "ab12")
    assert _split_signature("timestamp=1&signature=ab12", "") == ("timestamp=1", "ab12")
    assert _split_signature("a=1", "b=2&signature=x") == ("a=1b=2", "x")  # query + body, as Binance signs them
    assert _split_signature("signature=q", "b=2&signature=x") == ("b=2", "x")  # the body's, the last one
    assert _split_signature("", "b=signature=z&signature=x") == ("b=signature=z", "x")
    assert _split_signature("", "b=2&xsignature=x") == ("b=2&xsignature=x", None)


def test_matches_the_general_rule_on_any_shape():
    pieces = ["a=1", "signature=abc", "xsignature=q", "b=signature=z", "signature=", "c=2", "&", "", "signature=de&f"]
    rng = random.Random(12)
    for _ in range(20_000):
        query = "&".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        body = "&".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        assert _split_signature(query, body) == _general(query, body), (query, body)
