"""What every interop round trip produces and expects back."""

import sys

# (key, value, headers): keyed and unkeyed records, with and without headers,
# an empty value and a binary one.
RECORDS = [
    (b"key-0", b"value-0", [("trace", b"t0"), ("source", b"interop")]),
    (b"key-1", b"value-1", [("trace", b"t1")]),
    (None, b"no key", [("source", b"interop")]),
    (b"key-3", b"", []),
    (b"key-4", bytes(range(256)), [("bin", bytes([0, 255]))]),
]


def check(client, got):
    """Exits 1 unless got, a list of (key, value, headers), equals RECORDS."""
    want = [(k, v, [(hk, hv) for hk, hv in h]) for k, v, h in RECORDS]
    got = [(k, v, [(hk, bytes(hv) if hv is not None else None) for hk, hv in (h or [])]) for k, v, h in got]
    if got != want:
        print(f"{client}: records differ", file=sys.stderr)
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else None
            w = want[i] if i < len(want) else None
            if g != w:
                print(f"record {i}:\n  got  {g!r}\n  want {w!r}", file=sys.stderr)
        sys.exit(1)
    print(f"{client}: {len(got)} records round-tripped with keys and headers")
